package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// mailboxJSON is a mailbox as the API answers it.
type mailboxJSON struct {
	ID        int64      `json:"id"`
	Address   string     `json:"address"`
	Name      string     `json:"name"`
	Signature string     `json:"signature"`
	Health    string     `json:"health"`
	CreatedAt time.Time  `json:"created_at"`
	RemovedAt *time.Time `json:"removed_at"`
	SignIn    struct {
		Kind         string     `json:"kind"`
		Provider     string     `json:"provider"`
		Account      string     `json:"account"`
		State        string     `json:"state"`
		Reason       string     `json:"reason"`
		AuthorizedAt *time.Time `json:"authorized_at"`
		ReauthDueAt  *time.Time `json:"reauth_due_at"`
		ExpiresAt    *time.Time `json:"expires_at"`
	} `json:"sign_in"`
	Server *struct {
		IMAPHost        string   `json:"imap_host"`
		IMAPPort        int      `json:"imap_port"`
		IMAPSecurity    string   `json:"imap_security"`
		SMTPHost        string   `json:"smtp_host"`
		SMTPPort        int      `json:"smtp_port"`
		SMTPSecurity    string   `json:"smtp_security"`
		AuthMethod      string   `json:"auth_method"`
		Username        string   `json:"username"`
		Folders         []string `json:"folders"`
		AfterProcessing string   `json:"after_processing"`
		MoveTo          string   `json:"move_to"`
		InitialDays     int      `json:"initial_days"`
		MaxAgeDays      int      `json:"max_age_days"`
		Enabled         bool     `json:"enabled"`
	} `json:"server"`
	Sync struct {
		State         string     `json:"state"`
		LastSuccessAt *time.Time `json:"last_success_at"`
		LastError     string     `json:"last_error"`
		MessagesToday int        `json:"messages_today"`
	} `json:"sync"`
	Message string `json:"message"`
}

const (
	firstPassword  = "Tr0ub4dor&3-first"
	secondPassword = "correct-horse-battery-staple-2"
)

const passwordMailbox = `{"address":"Help@Example.com","name":"Help","auth":"password","imap_host":"imap.example.com",
	"imap_port":993,"imap_security":"tls","smtp_host":"smtp.example.com","smtp_port":587,"smtp_security":"starttls",
	"auth_method":"login","username":"helpdesk","password":"` + firstPassword + `","folders":["INBOX","Support"],
	"after_processing":"seen","initial_days":0,"max_age_days":30}`

// bodies collects every answer of a test, to search them for secrets.
type bodies struct{ all [][]byte }

func (b *bodies) keep(r response) response {
	b.all = append(b.all, r.body)
	return r
}

func (b *bodies) mustNotContain(t *testing.T, secrets ...string) {
	t.Helper()
	for _, body := range b.all {
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("an answer holds the password %q: %s", s, body)
			}
		}
	}
}

// mustNotBeStoredInClear searches the SQLite database's files for secrets;
// control, a value stored in clear, proves the search sees the rows.
func mustNotBeStoredInClear(t *testing.T, db *store.DB, control string, secrets ...string) {
	t.Helper()
	if db.Dialect() != "sqlite" {
		return
	}
	n, found := 0, false
	err := filepath.WalkDir(db.DataDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		found = found || bytes.Contains(b, []byte(control))
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the password %q in clear", path, s)
			}
		}
		return nil
	})
	if err != nil || n == 0 || !found {
		t.Fatalf("search the database files: %d files, control %q found: %v, %v", n, control, found, err)
	}
}

func TestMailboxesAdmin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var seen bodies
		admin := asAdmin(f)

		// An OAuth mailbox: the provider's servers are the defaults.
		var oauthMB mailboxJSON
		r := seen.keep(f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"sales@example.com","name":"Sales","auth":"microsoft"}`, admin))
		r.decode(t, http.StatusCreated, &oauthMB)
		if got, want := r.header.Get("Location"), fmt.Sprintf("/api/v1/mailboxes/%d", oauthMB.ID); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if oauthMB.Address != "sales@example.com" || oauthMB.Name != "Sales" || oauthMB.SignIn.Kind != "oauth" ||
			oauthMB.SignIn.Provider != "microsoft" || oauthMB.SignIn.State != "not_connected" || oauthMB.SignIn.AuthorizedAt != nil {
			t.Errorf("OAuth mailbox = %+v", oauthMB)
		}
		if s := oauthMB.Server; s == nil || s.IMAPHost != "outlook.office365.com" || s.IMAPPort != 993 || s.IMAPSecurity != "tls" ||
			s.SMTPHost != "smtp.office365.com" || s.AuthMethod != "xoauth2" || strings.Join(s.Folders, ",") != "INBOX" ||
			s.AfterProcessing != "leave" || s.InitialDays != 14 || s.MaxAgeDays != 90 || !s.Enabled {
			t.Errorf("OAuth mailbox server = %+v", oauthMB.Server)
		}
		if oauthMB.Sync.State != "idle" || oauthMB.Sync.LastSuccessAt != nil || oauthMB.Sync.MessagesToday != 0 {
			t.Errorf("OAuth mailbox sync = %+v", oauthMB.Sync)
		}
		// The same health as Admin -> Emails: never signed in is not a refusal.
		if oauthMB.Health != "not_connected" {
			t.Errorf("OAuth mailbox health = %q", oauthMB.Health)
		}

		// A password mailbox: the password is sealed and never answered.
		var pwMB mailboxJSON
		seen.keep(f.do(t, http.MethodPost, "/api/v1/mailboxes", passwordMailbox, admin)).decode(t, http.StatusCreated, &pwMB)
		if pwMB.Address != "help@example.com" || pwMB.SignIn.Kind != "password" || pwMB.SignIn.Account != "helpdesk" || pwMB.SignIn.State != "ok" || pwMB.Health != "ok" {
			t.Errorf("password mailbox = %+v", pwMB)
		}
		if s := pwMB.Server; s == nil || s.AuthMethod != "login" || s.Username != "helpdesk" || strings.Join(s.Folders, ",") != "INBOX,Support" ||
			s.AfterProcessing != "seen" || s.InitialDays != 0 || s.MaxAgeDays != 30 || s.SMTPPort != 587 {
			t.Errorf("password mailbox server = %+v", pwMB.Server)
		}
		au, err := db.MailboxAuth(ctx, pwMB.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pw, err := f.vault.Open(au.PasswordSealed, store.MailboxSecret(pwMB.ID, "password")); err != nil || string(pw) != firstPassword {
			t.Errorf("sealed password opens to %q, %v", pw, err)
		}

		// Several mistakes: each field's, in errors; error and field are the first.
		var refused errorJSON
		f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"help","auth":"password","password":"pw","imap_host":"imap.example.com","imap_port":99999,"initial_days":-1}`, admin).
			decode(t, http.StatusUnprocessableEntity, &refused)
		if got := fmt.Sprint(refused.Errors); refused.Field != "address" || refused.Error != `"help" is not an email address` ||
			got != `[{"help" is not an email address address} {ports must be between 1 and 65535 imap_port} {initial days must be between 0 and 3650 initial_days}]` {
			t.Errorf("several mistakes = %+v", refused)
		}

		// Test connection, as on the page: the failing step in words, nothing saved.
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closedPort := closed.Addr().(*net.TCPAddr).Port
		closed.Close()
		probe := fmt.Sprintf(`{"address":"probe@example.com","auth":"password","imap_host":"127.0.0.1","imap_port":%d,"imap_security":"none","password":"x"}`, closedPort)
		var tested testJSON
		f.do(t, http.MethodPost, "/api/v1/mailboxes/test", probe, admin).decode(t, http.StatusUnprocessableEntity, &tested)
		if tested.OK || !strings.HasPrefix(tested.Error, "Nothing answers at 127.0.0.1:") || len(tested.Checks) != 1 ||
			tested.Checks[0].Server != "IMAP" || tested.Checks[0].Step != "tcp" || tested.Checks[0].Field != "imap_port" || tested.Checks[0].Message != tested.Error {
			t.Errorf("test of a closed port = %+v", tested)
		}
		f.do(t, http.MethodPost, "/api/v1/mailboxes/test", probe).wantError(t, http.StatusForbidden, "only admins can manage mailboxes")
		if _, err := db.MailboxByAddress(ctx, "probe@example.com"); err == nil {
			t.Error("a connection test saved its mailbox")
		}

		// Someone syncs it today.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.CountSyncedMessages(ctx, pwMB.ID, store.Fetched{Count: 3}, time.Now())
		}); err != nil {
			t.Fatal(err)
		}

		// Agents read mailboxes too, settings included.
		var list struct{ Mailboxes []mailboxJSON }
		seen.keep(f.do(t, http.MethodGet, "/api/v1/mailboxes", "")).decode(t, http.StatusOK, &list)
		if len(list.Mailboxes) != 3 || list.Mailboxes[0].ID != pwMB.ID || list.Mailboxes[1].ID != oauthMB.ID || list.Mailboxes[2].ID != f.mailbox.ID {
			t.Fatalf("list = %+v", list.Mailboxes)
		}
		if got := list.Mailboxes[0]; got.Server == nil || got.Sync.MessagesToday != 3 || got.Sync.LastSuccessAt == nil {
			t.Errorf("synced mailbox in the list = %+v", got)
		}
		if imported := list.Mailboxes[2]; imported.Server != nil || imported.SignIn.Kind != "none" || imported.SignIn.State != "not_connected" {
			t.Errorf("imported mailbox = %+v", imported)
		}
		var one mailboxJSON
		seen.keep(f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/mailboxes/%d", pwMB.ID), "")).decode(t, http.StatusOK, &one)
		if one.ID != pwMB.ID || one.Server == nil || one.Server.Username != "helpdesk" {
			t.Errorf("one mailbox = %+v", one)
		}

		// PATCH changes only what it names.
		path := fmt.Sprintf("/api/v1/mailboxes/%d", pwMB.ID)
		var patched mailboxJSON
		seen.keep(f.do(t, http.MethodPatch, path, `{"folders":["INBOX"],"after_processing":"move","move_to":"Done","enabled":false}`, admin)).
			decode(t, http.StatusOK, &patched)
		if s := patched.Server; s == nil || strings.Join(s.Folders, ",") != "INBOX" || s.AfterProcessing != "move" || s.MoveTo != "Done" ||
			s.Enabled || s.IMAPHost != "imap.example.com" || s.AuthMethod != "login" || s.MaxAgeDays != 30 || patched.Name != "Help" {
			t.Errorf("after PATCH = %+v %+v", patched, patched.Server)
		}
		// A new password is sealed again; the old one is gone.
		seen.keep(f.do(t, http.MethodPatch, path, `{"password":"`+secondPassword+`","enabled":true}`, admin)).decode(t, http.StatusOK, &patched)
		au, _ = db.MailboxAuth(ctx, pwMB.ID)
		if pw, err := f.vault.Open(au.PasswordSealed, store.MailboxSecret(pwMB.ID, "password")); err != nil || string(pw) != secondPassword {
			t.Errorf("sealed password after PATCH opens to %q, %v", pw, err)
		}
		if !patched.Server.Enabled || patched.SignIn.Account != "helpdesk" {
			t.Errorf("after the new password = %+v", patched)
		}
		// The name alone, on a mailbox without a sign-in.
		seen.keep(f.do(t, http.MethodPatch, fmt.Sprintf("/api/v1/mailboxes/%d", f.mailbox.ID), `{"name":"Old support"}`, admin)).decode(t, http.StatusOK, &patched)
		if patched.Name != "Old support" || patched.Server != nil {
			t.Errorf("rename = %+v", patched)
		}

		// Refusals say what to fix.
		for _, c := range []struct {
			method, path, body string
			status             int
			want               string
		}{
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com"}`, http.StatusUnprocessableEntity, "say how the mailbox signs in"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"not an address","auth":"microsoft"}`, http.StatusUnprocessableEntity, "is not an email address"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"yahoo"}`, http.StatusUnprocessableEntity, `sign-in provider "yahoo" is not configured`},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"password","imap_host":"imap.example.com"}`, http.StatusUnprocessableEntity, "needs a password"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","password":"` + firstPassword + `"}`, http.StatusUnprocessableEntity, "an OAuth mailbox has no password"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","imap_security":"ssl"}`, http.StatusUnprocessableEntity, "security must be tls, starttls or none"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","folders":[""]}`, http.StatusUnprocessableEntity, "folder name"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","initial_days":-1}`, http.StatusUnprocessableEntity, "initial days"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","folders":["INBOX\u0000x"]}`, http.StatusUnprocessableEntity, "contains a control character"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","folders":["IN\r\nBOX"]}`, http.StatusUnprocessableEntity, "contains a control character"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","folders":["` + strings.Repeat("f", 256) + `"]}`, http.StatusUnprocessableEntity, "longer than 255 bytes"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","after_processing":"move","move_to":"Done\u0007"}`, http.StatusUnprocessableEntity, "contains a control character"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","imap_host":"imap.attacker.example"}`, http.StatusUnprocessableEntity, "imap.attacker.example is not a mail server of microsoft"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","smtp_host":"smtp.attacker.example"}`, http.StatusUnprocessableEntity, "smtp.attacker.example is not a mail server of microsoft"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"password","password":"pw","imap_host":"imap.example.com","smtp_host":"smtp.example.com","smtp_security":"none"}`, http.StatusUnprocessableEntity, "SMTP without TLS is only allowed to this machine"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"password","password":"pw","imap_host":"imap.example.com:993"}`, http.StatusUnprocessableEntity, "give the host alone"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"SALES@example.com","auth":"microsoft"}`, http.StatusConflict, "mailbox sales@example.com already exists"},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft","color":"red"}`, http.StatusBadRequest, `unknown field "color"`},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","imap_port":"993"}`, http.StatusBadRequest, `field "imap_port" must be a whole number`},
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","initial_days":1.5}`, http.StatusBadRequest, `field "initial_days" must be a whole number, not a JSON number 1.5`},
			{http.MethodPatch, path, `{"address":"other@example.com"}`, http.StatusUnprocessableEntity, "cannot change"},
			{http.MethodPatch, path, `{"password":""}`, http.StatusUnprocessableEntity, "the password is empty"},
			{http.MethodPatch, path, `{"after_processing":"delete"}`, http.StatusUnprocessableEntity, "after processing must be leave, seen or move"},
			{http.MethodPatch, path, `{"imap_security":"none"}`, http.StatusUnprocessableEntity, "only allowed to this machine"},
			{http.MethodPatch, "/api/v1/mailboxes/999", `{"name":"x"}`, http.StatusNotFound, "mailbox 999 not found"},
			{http.MethodPatch, "/api/v1/mailboxes/abc", `{"name":"x"}`, http.StatusBadRequest, "mailbox id must be a positive integer"},
			{http.MethodGet, "/api/v1/mailboxes/999", ``, http.StatusNotFound, "mailbox 999 not found"},
			{http.MethodDelete, "/api/v1/mailboxes/999", ``, http.StatusNotFound, "mailbox 999 not found"},
		} {
			seen.keep(f.do(t, c.method, c.path, c.body, admin)).wantError(t, c.status, c.want)
		}
		if n, _ := db.Mailboxes(ctx); len(n) != 3 {
			t.Errorf("refused requests left %d mailboxes, want 3", len(n))
		}

		// Agents cannot change mailboxes.
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft"}`},
			{http.MethodPatch, path, `{"enabled":false}`},
			{http.MethodDelete, path, ``},
		} {
			seen.keep(f.do(t, c.method, c.path, c.body)).wantError(t, http.StatusForbidden, "only admins can manage mailboxes")
		}

		// DELETE: a mailbox without mail goes; one with tickets stays for them.
		var del struct {
			Deleted bool   `json:"deleted"`
			Message string `json:"message"`
		}
		seen.keep(f.do(t, http.MethodDelete, path, "", admin)).decode(t, http.StatusOK, &del)
		if !del.Deleted || del.Message != "removed mailbox help@example.com" {
			t.Errorf("delete = %+v", del)
		}
		f.do(t, http.MethodGet, path, "").wantError(t, http.StatusNotFound, "not found")
		keptPath := fmt.Sprintf("/api/v1/mailboxes/%d", f.mailbox.ID)
		seen.keep(f.do(t, http.MethodDelete, keptPath, "", admin)).decode(t, http.StatusOK, &del)
		if del.Deleted || !strings.Contains(del.Message, "its tickets stay") {
			t.Errorf("delete of a mailbox with tickets = %+v", del)
		}
		var kept mailboxJSON
		f.do(t, http.MethodGet, keptPath, "").decode(t, http.StatusOK, &kept)
		if kept.Server != nil || kept.SignIn.Kind != "none" || kept.RemovedAt == nil {
			t.Errorf("kept mailbox = %+v", kept)
		}
		var listed struct{ Mailboxes []mailboxJSON }
		f.do(t, http.MethodGet, "/api/v1/mailboxes", "").decode(t, http.StatusOK, &listed)
		for _, m := range listed.Mailboxes {
			if m.ID == f.mailbox.ID {
				t.Errorf("the removed mailbox is listed: %+v", m)
			}
		}
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "").decode(t, http.StatusOK, &map[string]any{})

		seen.mustNotContain(t, firstPassword, secondPassword)
		mustNotBeStoredInClear(t, db, "Old support", firstPassword, secondPassword)
		if logs := f.logs.String(); strings.Contains(logs, firstPassword) || strings.Contains(logs, secondPassword) {
			t.Errorf("the log holds a password:\n%s", logs)
		}
	})
}

func TestMailboxesWithoutAdmin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		g := *f
		mux := http.NewServeMux()
		mux.Handle("/api/v1/", api.New(api.Options{DB: db, Auth: f.auth, Desk: desk.New(db)}))
		g.srv = httptest.NewServer(mux)
		t.Cleanup(g.srv.Close)

		path := fmt.Sprintf("/api/v1/mailboxes/%d", f.mailbox.ID)
		g.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"x@example.com","auth":"microsoft"}`, asAdmin(f)).
			wantError(t, http.StatusServiceUnavailable, "mailbox administration is not available")
		g.do(t, http.MethodPatch, path, `{"name":"x"}`, asAdmin(f)).wantError(t, http.StatusServiceUnavailable, "not available")
		g.do(t, http.MethodDelete, path, "", asAdmin(f)).wantError(t, http.StatusServiceUnavailable, "not available")
		g.do(t, http.MethodDelete, path, "").wantError(t, http.StatusForbidden, "only admins")
		var one mailboxJSON
		g.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &one)
		if one.ID != f.mailbox.ID {
			t.Errorf("GET without admin = %+v", one)
		}
	})
}

// errorJSON is a refusal as the API answers it.
type errorJSON struct {
	Error  string `json:"error"`
	Field  string `json:"field"`
	Errors []struct {
		Error string `json:"error"`
		Field string `json:"field"`
	} `json:"errors"`
}
