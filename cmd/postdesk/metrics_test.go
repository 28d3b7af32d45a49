package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
)

// freeAddr is a 127.0.0.1 address nothing listens on (just now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveInProcess runs `postdesk serve` with vars until the test ends and
// returns its web address once it answers.
func serveInProcess(t *testing.T, vars map[string]string) string {
	t.Helper()
	addr, _ := serveInProcessLogs(t, vars)
	return addr
}

// serveInProcessLogs is serveInProcess that also returns the process's log.
func serveInProcessLogs(t *testing.T, vars map[string]string) (string, *logtest.Buffer) {
	t.Helper()
	addr := freeAddr(t)
	vars["POSTDESK_LISTEN"] = addr
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logtest.Buffer{}
	e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return vars[k] }}
	done := make(chan error, 1)
	go func() { done <- run(ctx, e, []string{"serve"}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			return addr, logs
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer in 30 s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getMetrics(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// /metrics lists every mailbox and its state: it is not public. With a
// token it answers those who send it; with an address of its own it
// answers there, and never without the token on the web address.
func TestMetricsAreNotPublic(t *testing.T) {
	const token = "metrics-token-for-tests"
	t.Run("token", func(t *testing.T) {
		vars := dialectEnv(t, "sqlite")
		vars["POSTDESK_METRICS_TOKEN"] = token
		url := "http://" + serveInProcess(t, vars) + "/metrics"
		for _, bad := range []string{"", "wrong-token-of-the-same-length", token + "x"} {
			if status, body := getMetrics(t, url, bad); status != http.StatusUnauthorized || strings.Contains(body, "postdesk_") {
				t.Errorf("token %q: %d %.80q, want 401 without metrics", bad, status, body)
			}
		}
		if status, body := getMetrics(t, url, token); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("with the token: %d %.200q", status, body)
		}
	})
	t.Run("own address", func(t *testing.T) {
		vars := dialectEnv(t, "sqlite")
		metricsAddr := freeAddr(t)
		vars["POSTDESK_METRICS_ADDR"] = metricsAddr
		web := serveInProcess(t, vars)
		if status, body := getMetrics(t, "http://"+web+"/metrics", ""); status != http.StatusUnauthorized || !strings.Contains(body, "POSTDESK_METRICS_TOKEN") {
			t.Errorf("web address without a token configured: %d %.200q, want 401 saying how to enable it", status, body)
		}
		if status, body := getMetrics(t, "http://"+metricsAddr+"/metrics", ""); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("metrics address: %d %.200q", status, body)
		}
		if status, _ := getMetrics(t, "http://"+metricsAddr+"/healthz", ""); status != http.StatusNotFound {
			t.Errorf("the metrics address serves more than /metrics: /healthz is %d", status)
		}
	})
}
