//go:build tools

// Package cluster only names the Kubernetes commands that build.sh compiles,
// so that `go mod tidy` keeps their dependencies in go.mod and go.sum.
package cluster

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
