// Command k8s-dockerapi puts the local Docker engine behind a unix socket that cri-dockerd
// v0.4 accepts. That cri-dockerd refuses engines older than Docker API 1.42 (Docker 23); Debian
// bookworm's docker.io 20.10 speaks 1.41. The only 1.42 feature it uses is the bind-mount option
// CreateMountpoint, which 1.41 ignores and which the kubelet does not need (it creates every
// mount source before a container is created). So this proxy reports API 1.42 on /version and
// sends every request to the engine as an API 1.41 request; everything else passes unchanged,
// hijacked streams (attach, exec) included.
//
// One more change, for sandboxes like this project's machines, where even root may not lower a
// process's OOM score: the kubelet asks for oom_score_adj -998 for pod sandboxes (and -997 for
// Guaranteed pods), which runc then fails to set ("can't get final child's PID from pipe"). A
// negative HostConfig.OomScoreAdj in a container create request is raised to 0 (logged).
//
//	k8s-dockerapi -listen /path/proxy.sock -engine /var/run/docker.sock
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

const (
	engineAPI   = "1.41"
	reportedAPI = "1.42"
)

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

func main() {
	listen := flag.String("listen", "", "unix socket to serve")
	engine := flag.String("engine", "/var/run/docker.sock", "the engine's unix socket")
	flag.Parse()
	if *listen == "" {
		log.Fatal("-listen is required")
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
			r.Out.URL.Path = versionPrefix.ReplaceAllString(r.In.URL.Path, "/v"+engineAPI+"/")
			r.Out.URL.RawPath = ""
			if r.In.Method == http.MethodPost && strings.HasSuffix(r.Out.URL.Path, "/containers/create") {
				if err := raiseOOMScoreAdj(r.Out); err != nil {
					log.Printf("container create body left as is: %v", err)
				}
			}
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", *engine)
			},
		},
		ModifyResponse: reportVersion,
		FlushInterval:  -1, // stream logs, events and pull progress as they come
	}
	_ = os.Remove(*listen)
	listener, err := net.Listen("unix", *listen)
	if err != nil {
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		_ = listener.Close()
		os.Exit(0)
	}()
	log.Printf("serving %s for the engine at %s (API %s reported as %s)", *listen, *engine, engineAPI, reportedAPI)
	log.Fatal(http.Serve(listener, proxy))
}

// raiseOOMScoreAdj sets a negative HostConfig.OomScoreAdj of a create request to 0.
func raiseOOMScoreAdj(req *http.Request) error {
	if req.Body == nil {
		return nil
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var create map[string]any
	if err := json.Unmarshal(body, &create); err != nil {
		return err
	}
	hostConfig, _ := create["HostConfig"].(map[string]any)
	score, _ := hostConfig["OomScoreAdj"].(float64)
	if score >= 0 {
		return nil
	}
	hostConfig["OomScoreAdj"] = 0
	body, err = json.Marshal(create)
	if err != nil {
		return err
	}
	log.Printf("create %s: OomScoreAdj %v raised to 0", req.URL.Query().Get("name"), score)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// reportVersion rewrites ApiVersion in the answer to GET /version.
func reportVersion(resp *http.Response) error {
	path := versionPrefix.ReplaceAllString(resp.Request.URL.Path, "/")
	if path != "/version" || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	var version map[string]any
	if err := json.Unmarshal(body, &version); err != nil {
		return err
	}
	version["ApiVersion"] = reportedAPI
	body, err = json.Marshal(version)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Api-Version", reportedAPI)
	return nil
}
