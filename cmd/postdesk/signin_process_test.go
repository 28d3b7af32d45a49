package main

import (
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The sign-in done-when of issue 8, against the real binary: 200
// concurrent wrong sign-ins (each through the form's CSRF double submit,
// from its own loopback address, so only the hashing bound holds them)
// keep `postdesk serve` under 500 MB and /healthz answering in under 1 s;
// afterwards the right password still works once the back-off has passed.
func TestSignInFloodKeepsServeSmall(t *testing.T) {
	const (
		flood     = 200
		admin     = "admin@example.com"
		password  = "correct horse battery"
		maxRSS    = 500 << 20
		maxHealth = time.Second
	)
	bin := buildPostdesk(t)
	p := newProcEnv(t, bin, "POSTDESK_DATA="+t.TempDir())
	p.run(password+"\n", "user", "add", "--email", admin, "--role", "admin")
	srv := p.serve("serve")
	base := waitListening(t, p, srv)
	pid := srv.cmd.Process.Pid
	t.Logf("serve (pid %d) at %s; before the flood: %s", pid, base, memStatus(t, pid))

	// /healthz, polled from 127.0.0.1 all through the flood.
	stop := make(chan struct{})
	var health []time.Duration
	var healthErrs []string
	var hwg sync.WaitGroup
	hwg.Add(1)
	go func() {
		defer hwg.Done()
		c := &http.Client{Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			began := time.Now()
			res, err := c.Get(base + "/healthz")
			took := time.Since(began)
			if err != nil {
				healthErrs = append(healthErrs, err.Error())
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				healthErrs = append(healthErrs, res.Status)
			}
			health = append(health, took)
		}
	}()

	// Every client loads the form first (its own cookie and token), then
	// all submit at once.
	clients := make([]*formClient, flood)
	for i := range clients {
		email := fmt.Sprintf("nobody%d@example.com", i)
		if i%20 == 0 {
			email = admin // 10 wrong passwords for the real account too
		}
		// 127.0.1.1, 127.0.1.2, ...: loopback addresses all reach the server.
		clients[i] = newFormClient(t, base, net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)), email)
	}
	began := time.Now()
	statuses := make([]int, flood)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = c.submit(t, "wrong password "+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	floodTook := time.Since(began)
	time.Sleep(200 * time.Millisecond) // a few more health checks after the flood
	close(stop)
	hwg.Wait()

	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	hwm := vmHWM(t, pid)
	slices.Sort(health)
	var p50, worst time.Duration
	if len(health) > 0 {
		p50, worst = health[len(health)/2], health[len(health)-1]
	}
	// The figures of the done-when.
	fmt.Printf("sign-in flood: %d concurrent wrong sign-ins in %s: %d refused (401), %d backed off (429), %d busy (503)\n",
		flood, floodTook.Round(time.Millisecond), counts[401], counts[429], counts[503])
	fmt.Printf("sign-in flood: peak RSS (VmHWM) %.0f MB (limit %d MB); /healthz %d checks, median %s, slowest %s (limit %s)\n",
		float64(hwm)/(1<<20), maxRSS>>20, len(health), p50.Round(time.Millisecond), worst.Round(time.Millisecond), maxHealth)

	if os.Getenv("SIGNIN_DEBUG") != "" {
		t.Logf("log:\n%s", p.logTail("serve", 400))
	}
	if counts[401]+counts[429]+counts[503] != flood {
		t.Errorf("answers other than 401, 429 and 503: %v\n%s", counts, p.logTail("serve", 30))
	}
	if counts[401] == 0 || counts[503] == 0 {
		t.Errorf("want some sign-ins checked (401) and some refused as busy (503): %v", counts)
	}
	if hwm >= maxRSS {
		t.Errorf("peak RSS %d MB, want under %d MB", hwm>>20, maxRSS>>20)
	}
	if len(health) < 5 || worst >= maxHealth || len(healthErrs) > 0 {
		t.Errorf("/healthz: %d answers, slowest %s, errors %v", len(health), worst, healthErrs)
	}

	// The account's failures set a back-off: it is refused at once, with
	// the right password, and works once the wait has passed.
	c := newFormClient(t, base, net.IPv4(127, 0, 0, 1), admin)
	status, retry := c.submitFull(t, password)
	if status == http.StatusTooManyRequests {
		wait, _ := strconv.Atoi(retry)
		t.Logf("right password refused during the back-off; waiting %ds", wait)
		time.Sleep(time.Duration(wait)*time.Second + 100*time.Millisecond)
		c = newFormClient(t, base, net.IPv4(127, 0, 0, 1), admin)
		status, _ = c.submitFull(t, password)
	} else {
		// The back-off began with the flood's first failures and may
		// have passed already (the web tests pin the exact timing).
		t.Logf("right password after the flood: status %d at once", status)
	}
	if status != http.StatusSeeOther {
		t.Fatalf("right password after the back-off: status %d\n%s", status, p.logTail("serve", 20))
	}
}

// formClient is one browser at the sign-in form, from its own address.
type formClient struct {
	base, email, token string
	c                  *http.Client
}

func newFormClient(t *testing.T, base string, from net.IP, email string) *formClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 10 * time.Second}
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/login")
	if err != nil {
		t.Fatalf("GET /login from %s: %v", from, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no csrf field in the sign-in form:\n%s", b)
	}
	return &formClient{base: base, email: email, token: html.UnescapeString(string(m[1])), c: c}
}

func (f *formClient) submit(t *testing.T, password string) int {
	s, _ := f.submitFull(t, password)
	return s
}

func (f *formClient) submitFull(t *testing.T, password string) (status int, retryAfter string) {
	res, err := f.c.PostForm(f.base+"/login", url.Values{"csrf": {f.token}, "email": {f.email}, "password": {password}})
	if err != nil {
		t.Errorf("POST /login: %v", err)
		return 0, ""
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if (res.StatusCode == 429 || res.StatusCode == 503) && res.Header.Get("Retry-After") == "" {
		t.Errorf("%d without Retry-After", res.StatusCode)
	}
	return res.StatusCode, res.Header.Get("Retry-After")
}

// waitListening reads serve's log until it says where it listens.
func waitListening(t *testing.T, p *procEnv, s *serveProc) string {
	t.Helper()
	re := regexp.MustCompile(`postdesk is running.*listen=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(p.logs, s.name+".log"))
		if m := re.FindSubmatch(b); m != nil {
			return "http://" + string(m[1])
		}
		if s.exited() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve did not start:\n%s", p.logTail(s.name, 30))
	return ""
}

// vmHWM is the peak resident set size of a process, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	for _, line := range strings.Split(memStatus(t, pid), "; ") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM for pid %d", pid)
	return 0
}

// memStatus is the memory lines of /proc/PID/status.
func memStatus(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") || strings.HasPrefix(line, "VmRSS:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, "; ")
}
