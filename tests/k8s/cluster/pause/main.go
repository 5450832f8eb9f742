// Command k8s-pause is the pod sandbox ("pause") process of the project's test cluster: it
// holds the pod's namespaces, reaps orphans when it is PID 1, and exits on SIGINT/SIGTERM.
// No registry is reachable here, so the sandbox image is built locally from this program.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
