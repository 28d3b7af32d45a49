package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// recorder is a testing.TB that keeps what Axe reports instead of failing
// the real test.
type recorder struct {
	testing.TB
	errors   []string
	fatal    string
	skip     string
	cleanups []func()
}

func (r *recorder) Error(args ...any)   { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Log(...any)          {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Cleanup(f func())    { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f in its own goroutine, so that Fatalf and Skipf can stop it.
func (r *recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

const (
	goodPage = `<!doctype html><html lang="en"><head><title>Good</title></head><body><main><h1>Fine</h1><p style="color:#1d2433">Readable.</p></main></body></html>`
	badPage  = `<!doctype html><html lang="en"><head><title>Bad</title></head><body><main><h1>Faint</h1><p class="faint" style="color:#8a93a3;background:#fff">3.09 to 1.</p></main></body></html>`
)

// Axe reports a page's contrast failure with the rule and the element, and
// passes a page without one: the check can fail.
func TestAxeFindsViolations(t *testing.T) {
	if _, err := readAxe(); err != nil && !ciSet() {
		t.Skipf("axe-core is not installed (%v): run scripts/install-axe", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/bad" {
			fmt.Fprint(w, badPage)
			return
		}
		fmt.Fprint(w, goodPage)
	}))
	defer srv.Close()
	ctx := New(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/good")); err != nil {
		t.Fatal(err)
	}
	good := &recorder{TB: t}
	good.run(func() { Axe(good, ctx, "good page") })
	if good.fatal != "" || len(good.errors) != 0 {
		t.Errorf("good page: fatal %q, errors %q", good.fatal, good.errors)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/bad")); err != nil {
		t.Fatal(err)
	}
	bad := &recorder{TB: t}
	bad.run(func() { AxeAt(bad, ctx, "bad page", 375, 740) })
	if bad.fatal != "" || len(bad.errors) != 1 {
		t.Fatalf("bad page: fatal %q, errors %q", bad.fatal, bad.errors)
	}
	if e := bad.errors[0]; !strings.Contains(e, "axe on bad page: color-contrast (serious)") || !strings.Contains(e, `class="faint"`) || !strings.Contains(e, "3.09") {
		t.Errorf("bad page error = %q", e)
	}
}

// Without axe-core the check fails under CI, and elsewhere marks the test
// skipped at its end: it never passes unchecked.
func TestAxeMissing(t *testing.T) {
	t.Setenv(EnvAxe, t.TempDir()+"/axe.min.js")

	t.Setenv("CI", "true")
	ci := &recorder{TB: t}
	ci.run(func() { Axe(ci, nil, "a page") })
	if !strings.Contains(ci.fatal, "axe-core "+AxeVersion+" is not installed") || !strings.Contains(ci.fatal, "CI is set") {
		t.Errorf("under CI: fatal %q", ci.fatal)
	}

	t.Setenv("CI", "")
	local := &recorder{TB: t}
	local.run(func() { Axe(local, nil, "a page") })
	if local.fatal != "" || len(local.cleanups) != 1 {
		t.Fatalf("outside CI: fatal %q, %d cleanups", local.fatal, len(local.cleanups))
	}
	local.run(local.cleanups[0])
	if !strings.Contains(local.skip, "ACCESSIBILITY NOT CHECKED") {
		t.Errorf("outside CI: skip %q", local.skip)
	}
}
