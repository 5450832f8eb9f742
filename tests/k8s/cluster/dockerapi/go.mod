module clipper.local/k8s-dockerapi

go 1.24.0
