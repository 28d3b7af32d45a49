package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A body held back after its headers is dropped once it has sent nothing
// for the stall time; a slow body that keeps sending is read whole, and a
// handler that runs past the stall after reading its body is not cut.
func TestStalledBodies(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	srv := httptest.NewServer(stalledBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "could not read the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		select { // work past the stall, as a long request may
		case <-time.After(2 * stall):
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "read %d bytes", len(b))
	}), stall))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	send := func(t *testing.T, chunks []string, gap time.Duration) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		total := 0
		for _, ch := range chunks {
			total += len(ch)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
		for i, ch := range chunks {
			if i > 0 {
				time.Sleep(gap)
			}
			io.WriteString(c, ch)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}

	// Slow but steady: ten chunks 100 ms apart (a second in all, over three
	// stall times), then the handler works two stall times.
	chunks := strings.Split(strings.Repeat("x", 100), "")[:10]
	if got := send(t, chunks, 100*time.Millisecond); got != "200 read 10 bytes" {
		t.Errorf("slow body: %q", got)
	}

	// Held back: Content-Length 100, 8 bytes sent, then silence.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n12345678")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a held-back body got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	took := time.Since(start)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "timeout") {
		t.Errorf("held-back body: %d %q", res.StatusCode, b)
	}
	if took < stall || took > 5*time.Second {
		t.Errorf("held-back body answered after %v, want about %v", took, stall)
	}
}
