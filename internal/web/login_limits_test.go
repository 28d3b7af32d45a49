package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/store"
)

// testClock is a settable clock for the sign-in back-off.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withLimits gives the env's pages an auth service with these limits and
// a clock the test moves.
func (e *env) withLimits(opts auth.Options) *testClock {
	clk := &testClock{now: time.Now()}
	opts.DB, opts.Now, opts.Logger = e.db, clk.Now, e.h.log
	e.h.auth = auth.NewService(opts)
	return clk
}

// The done-when: the 6th wrong password for one account in a
// minute is slowed, with a clear message, and the right password works
// once the back-off has passed.
func TestSignInBacksOffPerAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := e.withLimits(auth.Options{}) // the default limits: 5 failures free
	c := e.client()
	for i := range 5 {
		res := e.postLogin(c, "agent@example.com", "wrong password", "")
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: status %d", i+1, res.StatusCode)
		}
		clk.Add(500 * time.Millisecond) // five in under three seconds
	}
	res := e.postLogin(c, "agent@example.com", "wrong password", "")
	wantStatus(t, res, http.StatusTooManyRequests)
	if ra := res.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After = %q, want 2", ra)
	}
	wantContains(t, readBody(res), "Too many failed sign-ins for this account. Try again in 2 seconds.", `value="agent@example.com"`)
	// Refused with the right password too, in another browser: the account waits.
	wantStatus(t, e.postLogin(e.client(), "agent@example.com", testPassword, ""), http.StatusTooManyRequests)
	if !strings.Contains(e.logs.String(), "sign-in back-off") || !strings.Contains(e.logs.String(), "subject=agent@example.com") {
		t.Errorf("no back-off log line:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), "wrong password") || strings.Contains(e.logs.String(), testPassword) {
		t.Fatal("a password reached the log")
	}

	// An email no one has answers the same way: nothing reveals which exist.
	for range 5 {
		wantStatus(t, e.postLogin(c, "nobody@example.com", "wrong password", ""), http.StatusUnauthorized)
	}
	res = e.postLogin(c, "nobody@example.com", "wrong password", "")
	wantStatus(t, res, http.StatusTooManyRequests)
	wantContains(t, readBody(res), "Too many failed sign-ins for this account. Try again in 2 seconds.")

	clk.Add(2 * time.Second)
	res = e.postLogin(c, "agent@example.com", testPassword, "/tickets")
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/tickets" {
		t.Errorf("Location = %q", loc)
	}
}

// A flood from one address backs off whatever emails it tries.
func TestSignInFloodFromOneIPBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := e.withLimits(auth.Options{Limits: auth.Limits{IP: auth.Backoff{Free: 4, Base: 30 * time.Second, Max: time.Hour}}})
	c := e.client()
	for i := range 4 {
		wantStatus(t, e.postLogin(c, "guess"+string(rune('a'+i))+"@example.com", "guess", ""), http.StatusUnauthorized)
	}
	for i := range 20 {
		res := e.postLogin(c, "more"+string(rune('a'+i))+"@example.com", "guess", "")
		wantStatus(t, res, http.StatusTooManyRequests)
		if i == 0 {
			if ra := res.Header.Get("Retry-After"); ra != "30" {
				t.Errorf("Retry-After = %q, want 30", ra)
			}
			wantContains(t, readBody(res), "Too many failed sign-ins from your network. Try again in 30 seconds.")
		}
	}
	// Refused attempts are not counted: the wait is still the first one.
	clk.Add(30 * time.Second)
	res := e.postLogin(c, "agent@example.com", testPassword, "")
	wantStatus(t, res, http.StatusSeeOther)
}

// When every hashing slot stays taken, a sign-in is refused with 503 and
// Retry-After after a short wait, without checking the password.
func TestSignInBusyIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hashes := auth.NewHashLimiter(1, 50*time.Millisecond)
	release, err := hashes.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.withLimits(auth.Options{Hashes: hashes})
	res := e.postLogin(e.client(), "agent@example.com", testPassword, "")
	wantStatus(t, res, http.StatusServiceUnavailable)
	if ra := res.Header.Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After = %q, want 5", ra)
	}
	wantContains(t, readBody(res), "Postdesk is busy checking other sign-ins. Your password was not checked: try again in 5 seconds.")
	release()
	wantStatus(t, e.postLogin(e.client(), "agent@example.com", testPassword, ""), http.StatusSeeOther)
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	h := &Handler{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"forwarded header from an untrusted peer is ignored", "192.0.2.7:5000", []string{"203.0.113.9"}, "192.0.2.7"},
		{"trusted proxy", "10.1.2.3:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"a client-written entry before the proxy's is not believed", "10.1.2.3:443", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "[::1]:80", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several header lines", "10.1.2.3:443", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9"},
		{"garbage stops at the last trusted hop", "10.1.2.3:443", []string{"not-an-ip"}, "10.1.2.3"},
		{"trusted proxy without the header", "10.1.2.3:443", nil, "10.1.2.3"},
		{"IPv4-mapped IPv6 peer", "[::ffff:192.0.2.7]:5000", nil, "192.0.2.7"},
	} {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := h.clientIP(r); got != tc.want {
			t.Errorf("%s: clientIP = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestBrowserSignInBackOff shows the back-off message in a real Chromium:
// an account with 9 failures must wait 32 seconds.
func TestBrowserSignInBackOff(t *testing.T) {
	e := newEnv(t)
	clk := e.withLimits(auth.Options{}) // stands still while Chromium starts
	ctx := context.Background()
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		return tx.PutThrottle(ctx, store.Throttle{Kind: store.ThrottleAccount, Subject: "agent@example.com", Failures: 9, LastFailedAt: clk.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	bctx := browsertest.New(t)
	do(t, bctx, chromedp.Navigate(e.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "agent@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
	)
	res, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", res.Status)
	}
	msg := eval[string](t, bctx, `document.querySelector('#login-error').textContent`)
	if msg != "Too many failed sign-ins for this account. Try again in 32 seconds." {
		t.Fatalf("message shown = %q", msg)
	}
	browsertest.Screenshot(t, bctx, "login-back-off")
}
