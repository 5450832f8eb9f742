//go:build tools

// Package cridockerd only names the command that ../build.sh compiles, so `go mod tidy`
// keeps its dependencies in go.mod and go.sum.
package cridockerd

import _ "github.com/Mirantis/cri-dockerd"
