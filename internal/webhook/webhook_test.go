package webhook_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/webhook"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"id":1}`)
	at := time.Unix(1767000000, 0)
	h := webhook.Sign(secret, at, body)
	// The documented computation, by hand (docs/webhooks.md).
	if want := "t=1767000000,v1="; h[:len(want)] != want {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify(secret, h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
		now          time.Time
		want         error
	}{
		"other secret":    {[]byte("other"), body, h, at, webhook.ErrSignatureMismatch},
		"changed body":    {secret, []byte(`{"id":2}`), h, at, webhook.ErrSignatureMismatch},
		"too old":         {secret, body, h, at.Add(10 * time.Minute), webhook.ErrSignatureTooOld},
		"from the future": {secret, body, h, at.Add(-10 * time.Minute), webhook.ErrSignatureTooOld},
		"no v1":           {secret, body, "t=1767000000", at, webhook.ErrBadSignatureHeader},
		"garbage":         {secret, body, "hello", at, webhook.ErrBadSignatureHeader},
		"bad hex":         {secret, body, "t=1767000000,v1=zz", at, webhook.ErrBadSignatureHeader},
	} {
		if err := webhook.Verify(c.secret, c.header, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// A rotated header carrying two v1 values matches either.
	if err := webhook.Verify(secret, h+",v1=00", body, at, 0); err != nil {
		t.Errorf("two signatures: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		ok           bool
		refused      bool // a private target
	}{
		{"https://hooks.example.com/postdesk", false, true, false},
		{"http://hooks.example.com:8080/x?y=1", false, true, false},
		{"ftp://hooks.example.com/", false, false, false},
		{"file:///etc/passwd", false, false, false},
		{"javascript:alert(1)", false, false, false},
		{"hooks.example.com/x", false, false, false},
		{"https://user:pw@hooks.example.com/", false, false, false},
		{"", false, false, false},
		{"https://127.0.0.1/", false, false, true},
		{"https://localhost:9000/", false, false, true},
		{"https://10.1.2.3/", false, false, true},
		{"https://169.254.169.254/latest/meta-data", false, false, true},
		{"https://[::1]/", false, false, true},
		{"https://[fd00::1]/", false, false, true},
		{"https://[::ffff:127.0.0.1]/", false, false, true},
		{"https://100.64.0.1/", false, false, true},
		{"https://127.0.0.1/", true, true, false},
		{"http://localhost:9000/", true, true, false},
		// Numbers that are not an IPv4 address in four parts: Go looks
		// them up as names, so no delivery could ever succeed.
		{"http://2130706433:9/", false, false, false},
		{"http://2130706433:9/", true, false, false},
		{"http://0:9/", false, false, false},
		{"http://127.1:9/", true, false, false},
		{"http://0x7f.1/", false, false, false},
		{"http://0x7f000001/", false, false, false},
		{"https://10.example.com/", false, true, false},
		{"https://1.2.3.4.example/", false, true, false},
		{"https://[::ffff:203.0.113.7]/", false, true, false},
	} {
		_, err := webhook.CheckURL(c.url, c.allowPrivate)
		var refused *webhook.TargetRefusedError
		var bad *webhook.URLError
		switch {
		case c.ok && err != nil:
			t.Errorf("%q: %v", c.url, err)
		case !c.ok && err == nil:
			t.Errorf("%q accepted", c.url)
		case c.refused && !errors.As(err, &refused):
			t.Errorf("%q: %v, want a refused target", c.url, err)
		case !c.ok && !c.refused && !errors.As(err, &bad):
			t.Errorf("%q: %v, want a URL error", c.url, err)
		}
	}
	if webhook.Public(netip.MustParseAddr("93.184.216.34")) != true {
		t.Error("a public address is not public")
	}
}

// The client checks the address it connects to, after resolution: a
// receiver on loopback is refused by default and reached when allowed.
func TestClientRefusesPrivateTargets(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	// "localhost" passes no literal check here: it is the dialer that refuses.
	url := fmt.Sprintf("http://localhost:%s/hook", srv.URL[len("http://127.0.0.1:"):])
	_, err := webhook.NewClient(webhook.ClientOptions{}).Post(url, "application/json", nil)
	var refused *webhook.TargetRefusedError
	if !errors.As(err, &refused) || !refused.IP.IsLoopback() || hits != 0 {
		t.Fatalf("POST to loopback: %v (hits %d), want a refused target", err, hits)
	}
	if webhook.Classify(0, err) != webhook.Refused {
		t.Error("a refused target would be retried")
	}
	resp, err := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true}).Post(url, "application/json", nil)
	if err != nil || resp.StatusCode != 200 || hits != 1 {
		t.Fatalf("allowed POST: %v, hits %d", err, hits)
	}
	resp.Body.Close()
}

// Redirects are not followed: the 3xx is the outcome, and it is refused.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
	}))
	defer srv.Close()
	resp, err := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true}).Post(srv.URL, "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if webhook.Classify(resp.StatusCode, nil) != webhook.Refused {
		t.Error("a redirect would be retried")
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]webhook.Outcome{200: webhook.Delivered, 204: webhook.Delivered, 400: webhook.Refused,
		401: webhook.Refused, 404: webhook.Refused, 410: webhook.Refused, 408: webhook.Retry, 429: webhook.Retry,
		500: webhook.Retry, 503: webhook.Retry, 0: webhook.Retry} {
		if got := webhook.Classify(status, nil); got != want {
			t.Errorf("status %d: %v, want %v", status, got, want)
		}
	}
	if webhook.Classify(0, errors.New("connection refused")) != webhook.Retry {
		t.Error("a network error is not retried")
	}
}
