package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("success goes to the page asked for", func(t *testing.T) {
		c := e.client()
		res := e.postLogin(c, "Agent@Example.com", testPassword, "/tickets?status=open")
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/tickets?status=open" {
			t.Errorf("Location = %q", loc)
		}
		var sess *http.Cookie
		for _, ck := range res.Cookies() {
			if ck.Name == sessionCookie {
				sess = ck
			}
		}
		if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Value == "" {
			t.Fatalf("session cookie = %+v", sess)
		}
		res, body := e.get(c, "/tickets")
		wantStatus(t, res, http.StatusOK)
		wantContains(t, body, "agent@example.com", "Sign out")
		// A signed-in browser skips the form.
		res, _ = e.get(c, "/login?next=/tickets/7")
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/tickets/7" {
			t.Errorf("Location = %q", loc)
		}
	})

	for _, tc := range []struct{ name, email, password string }{
		{"wrong password", "agent@example.com", "not the password"},
		{"unknown email", "nobody@example.com", testPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			res := e.postLogin(c, tc.email, tc.password, "")
			wantStatus(t, res, http.StatusUnauthorized)
			b, _ := io.ReadAll(res.Body)
			wantContains(t, string(b), "Wrong email or password.", `value="`+tc.email+`"`)
			for _, ck := range res.Cookies() {
				if ck.Name == sessionCookie && ck.Value != "" {
					t.Error("a failed sign-in set a session cookie")
				}
			}
		})
	}

	t.Run("secure cookies", func(t *testing.T) {
		e.h.secureCookies = true
		defer func() { e.h.secureCookies = false }()
		rec := newRecorder(e.h, "GET", "/login", nil)
		for _, ck := range rec.Result().Cookies() {
			if !ck.Secure {
				t.Errorf("cookie %s is not Secure", ck.Name)
			}
		}
	})
}

func TestLoginNeedsCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	// No double-submit cookie, no field.
	res := e.post(c, "/login", url.Values{"email": {e.user.Email}, "password": {testPassword}})
	wantStatus(t, res, http.StatusForbidden)
	b, _ := io.ReadAll(res.Body)
	wantContains(t, string(b), "This form expired; reload the page and try again.")
	// A cookie but a field that does not match it.
	e.get(c, "/login")
	res = e.post(c, "/login", url.Values{"csrf": {"forged-token-forged-token-forged-token"}, "email": {e.user.Email}, "password": {testPassword}})
	wantStatus(t, res, http.StatusForbidden)
	// A body past the sign-in form's bound (64 KB) is called too long, not
	// an expired form.
	res = e.post(c, "/login", url.Values{"csrf": {"x"}, "email": {e.user.Email}, "password": {strings.Repeat("p", 70<<10)}})
	wantStatus(t, res, http.StatusRequestEntityTooLarge)
	b, _ = io.ReadAll(res.Body)
	wantContains(t, string(b), "Too long to send", "over 64 KB", `href="/login"`)
}

func TestSignedOutGoesToLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for path, want := range map[string]string{
		"/tickets/1":           "/login?next=%2Ftickets%2F1",
		"/tickets?status=open": "/login?next=%2Ftickets%3Fstatus%3Dopen",
		"/":                    "/login",
		"/attachments/1":       "/login?next=%2Fattachments%2F1",
	} {
		res, _ := e.get(c, path)
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != want {
			t.Errorf("GET %s: Location = %q, want %q", path, loc, want)
		}
	}
	// A form POST without a session changes nothing.
	res := e.post(c, "/tickets/1/notes", url.Values{"body": {"hello"}})
	wantStatus(t, res, http.StatusSeeOther)
	// And a stale cookie is cleared.
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "stale"}})
	res, _ = e.get(c, "/tickets")
	wantStatus(t, res, http.StatusSeeOther)
}

func TestNoOpenRedirect(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"https://evil.test/", "//evil.test/x", "/\\evil.test", "\\\\evil.test", "http:evil.test", "javascript:alert(1)", "/x\r\nLocation: https://evil.test", "evil.test", ""} {
		if got := localPath(next); got != "/tickets" {
			t.Errorf("localPath(%q) = %q, want /tickets", next, got)
		}
	}
	for _, next := range []string{"/tickets/4", "/tickets?status=open&q=a%20b", "/tickets/4#note-2"} {
		if got := localPath(next); got != next {
			t.Errorf("localPath(%q) = %q", next, got)
		}
	}
	e := newEnv(t)
	res := e.postLogin(e.client(), e.user.Email, testPassword, "//evil.test/steal")
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/tickets" {
		t.Errorf("Location = %q, want /tickets", loc)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	token := e.csrf(c)
	wantStatus(t, e.post(c, "/logout", url.Values{}), http.StatusForbidden)
	res := e.post(c, "/logout", url.Values{"csrf": {token}})
	wantStatus(t, res, http.StatusSeeOther)
	res, _ = e.get(c, "/tickets")
	wantStatus(t, res, http.StatusSeeOther)
}

func TestFormsNeedCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.ticket(store.Ticket{Subject: "Printer"}, store.Message{TextBody: "hi"})
	c := e.signedIn()
	token := e.csrf(c)
	path := fmt.Sprintf("/tickets/%d", id)
	for _, form := range []url.Values{
		{"body": {"no token"}},
		{"body": {"wrong token"}, "csrf": {token + "x"}},
	} {
		res := e.post(c, path+"/notes", form)
		wantStatus(t, res, http.StatusForbidden)
		b, _ := io.ReadAll(res.Body)
		wantContains(t, string(b), "This form expired; reload the page and try again.", `href="`+path+`"`)
		wantStatus(t, e.post(c, path+"/status", url.Values{"status": {"solved"}, "csrf": form["csrf"]}), http.StatusForbidden)
	}
	// A cross-site POST with the right token is refused too (Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", e.srv.URL+path+"/notes", strings.NewReader(url.Values{"body": {"x"}, "csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wantStatus(t, res, http.StatusForbidden)
	notes, _ := e.db.TicketNotes(context.Background(), id)
	tk, _ := e.db.Ticket(context.Background(), id)
	if len(notes) != 0 || tk.Status != store.StatusOpen {
		t.Fatalf("refused forms changed the ticket: %d notes, status %s", len(notes), tk.Status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	for _, path := range []string{"/login", "/tickets", "/tickets/999", "/nope"} {
		res, _ := e.get(c, path)
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'", "img-src 'self' data:;"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, d)
			}
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
	}
	// Assets: hashed names, cached for a year.
	_, body := e.get(c, "/tickets")
	m := regexp.MustCompile(`href="(/static/app\.[0-9a-f]{10}\.css)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no hashed stylesheet link")
	}
	res, css := e.get(e.client(), m[1])
	wantStatus(t, res, http.StatusOK)
	if !strings.Contains(res.Header.Get("Cache-Control"), "max-age=31536000") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || !strings.Contains(css, ".chip-open") {
		t.Errorf("stylesheet headers %v", res.Header)
	}
	res, _ = e.get(c, "/static/app.0000000000.css")
	wantStatus(t, res, http.StatusNotFound)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	for path, want := range map[string]string{
		"/tickets/999":      "Ticket #999 doesn&#39;t exist",
		"/tickets/abc":      "There is no ticket &#34;abc&#34;",
		"/attachments/999":  "Attachment 999 doesn&#39;t exist",
		"/messages/999/raw": "Message 999 doesn&#39;t exist",
		"/no/such/page":     "There is no page at this address.",
	} {
		res, body := e.get(c, path)
		wantStatus(t, res, http.StatusNotFound)
		wantContains(t, body, want, "Back to tickets")
	}
	token := e.csrf(c)
	res := e.post(c, "/tickets/999/notes", url.Values{"csrf": {token}, "body": {"hi"}})
	wantStatus(t, res, http.StatusNotFound)
	res = e.post(c, "/tickets/999/status", url.Values{"csrf": {token}, "status": {"solved"}})
	wantStatus(t, res, http.StatusNotFound)
}

func TestServerErrorShowsIncidentOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	e.db.Close() // every query now fails
	res, body := e.get(c, "/tickets")
	wantStatus(t, res, http.StatusInternalServerError)
	m := regexp.MustCompile(`Incident id: <code>([0-9a-f]{8})</code>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no incident id in page:\n%s", body)
	}
	wantNotContains(t, body, "sql", "closed")
	if logs := e.logs.String(); !strings.Contains(logs, "incident_id="+m[1]) || !strings.Contains(logs, "closed") {
		t.Errorf("the error is not logged with its incident id:\n%s", logs)
	}
}

func TestAttachmentDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, mid := e.ticket(store.Ticket{Subject: "Files"}, store.Message{TextBody: "see attached",
		Attachments: []store.Attachment{
			{Filename: "Rapport d'été \"final\".pdf", ContentType: "application/pdf; name=x", Size: 4, SHA256: e.blob("%PDF")},
			{Filename: "page.html", ContentType: "text/html", Size: 30, SHA256: e.blob("<script>alert(1)</script>")},
			{Filename: "", ContentType: "bogus", Size: 1, SHA256: e.blob("x")},
		}})
	m, err := e.db.Message(context.Background(), mid)
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	for i, want := range []struct{ ct, disp, body string }{
		{"application/pdf", `attachment; filename="Rapport d'_t_ _final_.pdf"; filename*=UTF-8''Rapport%20d%27%C3%A9t%C3%A9%20%22final%22.pdf`, "%PDF"},
		{"text/html", `attachment; filename="page.html"; filename*=UTF-8''page.html`, "<script>alert(1)</script>"},
		{"application/octet-stream", `attachment; filename="attachment"; filename*=UTF-8''attachment`, "x"},
	} {
		res, body := e.get(c, fmt.Sprintf("/attachments/%d", m.Attachments[i].ID))
		wantStatus(t, res, http.StatusOK)
		h := res.Header
		if h.Get("Content-Type") != want.ct || h.Get("Content-Disposition") != want.disp || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || body != want.body {
			t.Errorf("attachment %d: headers %v body %q", i, h, body)
		}
	}
}

func TestRawSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw := "From: Ann <ann@customer.test>\r\nSubject: Printer\r\n\r\n<html><script>alert(1)</script>\r\n"
	_, mid := e.ticket(store.Ticket{Subject: "Printer"}, store.Message{TextBody: "x", RawSHA256: e.blob(raw), RawSize: int64(len(raw))})
	_, noRaw := e.ticket(store.Ticket{Subject: "Other"}, store.Message{TextBody: "x", DedupeKey: "noraw"})
	c := e.signedIn()
	res, body := e.get(c, fmt.Sprintf("/messages/%d/raw", mid))
	wantStatus(t, res, http.StatusOK)
	if body != raw || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "inline;") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("raw: %v %q", res.Header, body)
	}
	res, body = e.get(c, fmt.Sprintf("/messages/%d/raw", noRaw))
	wantStatus(t, res, http.StatusNotFound)
	wantContains(t, body, "source was not kept")

	if e.db.Dialect() != "sqlite" {
		return
	}
	// A pack cut short (a backup restored in part) is damage, said as
	// such, not a short file.
	packs, err := filepath.Glob(filepath.Join(e.db.DataDir(), "blobs", "packs", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack holds the raw message: %v %v", packs, err)
	}
	for _, p := range packs {
		if fi, err := os.Stat(p); err != nil || os.Truncate(p, fi.Size()-1) != nil {
			t.Fatal(p, err)
		}
	}
	res, body = e.get(c, fmt.Sprintf("/messages/%d/raw", mid))
	wantStatus(t, res, http.StatusInternalServerError)
	wantContains(t, body, "File damaged", "cut short", "incident id")
}

func TestBanners(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.banners = []Banner{
		{Level: BannerWarning, Title: "help@example.com needs reauthentication in 5 days", LinkURL: "/admin/emails", LinkText: "Reauthenticate"},
		{Level: BannerDanger, Title: "sales@example.com stopped fetching mail", Text: "Its authorization expired."},
	}
	c := e.signedIn()
	_, body := e.get(c, "/tickets")
	wantContains(t, body, `class="banner banner-warning" role="status"`, "help@example.com needs reauthentication in 5 days",
		`href="/admin/emails">Reauthenticate</a>`, `class="banner banner-danger" role="alert"`, "Its authorization expired.")
	_, body = e.get(e.client(), "/login")
	wantNotContains(t, body, "banner")
}

func TestRelativeTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", 5 * time.Minute: "5 min ago", 3 * time.Hour: "3 h ago",
		30 * time.Hour: "yesterday", 4 * 24 * time.Hour: "4 days ago", 40 * 24 * time.Hour: "1 Oct",
		400 * 24 * time.Hour: "6 Oct 2025",
	} {
		if got := agoFrom(now.Add(-d), now); got != want {
			t.Errorf("ago(-%v) = %q, want %q", d, got, want)
		}
	}
}

func newRecorder(h http.Handler, method, path string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, body))
	return rec
}

// With an https base URL every page tells browsers to stay on https
// (RFC 6797); over plain http the header would be ignored, and is not sent.
func TestHSTSWhenHTTPS(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, "sqlite")
	for _, hsts := range []bool{true, false} {
		h, err := New(Options{DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test", HSTS: hsts})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/login", "/tickets", "/static/nope.css", "/no-such-page"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			got := rec.Result().Header.Get("Strict-Transport-Security")
			if hsts && got != "max-age=63072000" {
				t.Errorf("https: %s Strict-Transport-Security = %q, want max-age=63072000", path, got)
			}
			if !hsts && got != "" {
				t.Errorf("http: %s sends Strict-Transport-Security %q", path, got)
			}
		}
	}
}

// With the database out of reach (the connection cut, as when PostgreSQL
// stops), a page is a 503 that says so and offers to reload, not a 500
// incident: when the open connection breaks, and when a new one is refused.
func TestDatabaseOutOfReach(t *testing.T) {
	db, cut := storetest.OpenCuttable(t)
	e := newEnvWith(t, db)
	c := e.signedIn()
	res, _ := e.get(c, "/tickets")
	wantStatus(t, res, http.StatusOK)
	cut()
	res, body := e.get(c, "/tickets")
	wantStatus(t, res, http.StatusServiceUnavailable)
	wantContains(t, body, "Postdesk cannot reach its database", "Nothing was lost", `href="/tickets">Reload</a>`)
	if got := res.Header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After = %q", got)
	}
	res, body = e.get(c, "/tickets?status=pending")
	wantStatus(t, res, http.StatusServiceUnavailable)
	wantContains(t, body, "Postdesk cannot reach its database")
	if !strings.Contains(e.logs.String(), "page failed: the database is out of reach") || strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("logs:\n%s", e.logs.String())
	}
}

// A message on no ticket (here a notification emailed to the admin) and
// its attachments are for admins: to an agent they look missing (any
// agent could read another's notifications, or an admin's, by id).
func TestMessageOnNoTicketIsForAdmins(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sum := storetest.PutBlob(t, e.db, "From: support@example.com\r\nTo: agent@example.com\r\nSubject: Postdesk: a mailbox needs reauthentication\r\n\r\nHello.\r\n")
	logo := storetest.PutBlob(t, e.db, "\x89PNG not really")
	m := store.Message{MailboxID: e.mailbox.ID, Direction: "out", Kind: store.KindReply, DedupeKey: "notice-1", FromAddress: "support@example.com",
		Subject: "Postdesk: a mailbox needs reauthentication", TextBody: "Hello.", RawSHA256: sum, RawSize: 10, ReceivedAt: time.Now(),
		Attachments: []store.Attachment{{Filename: "logo.png", ContentType: "image/png", Size: 15, SHA256: logo}}}
	if err := e.db.Write(ctx, func(tx *store.Tx) error { return tx.InsertMessage(ctx, &m) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth.CreateUser(ctx, e.db, "maria@example.com", "Maria", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}
	agent := e.client()
	if res := e.postLogin(agent, "maria@example.com", testPassword, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("agent sign-in: %d", res.StatusCode)
	}
	admin := e.signedIn()
	raw, att := fmt.Sprintf("/messages/%d/raw", m.ID), fmt.Sprintf("/attachments/%d", m.Attachments[0].ID)
	for _, path := range []string{raw, att} {
		res, body := e.get(agent, path)
		wantStatus(t, res, http.StatusNotFound)
		wantNotContains(t, body, "needs reauthentication")
		res, _ = e.get(admin, path)
		wantStatus(t, res, http.StatusOK)
	}
}
