package oauth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		first, _ := e.svc.TokenFor(e.ctx, e.mb.ID)
		e.clock.Advance(56 * time.Minute) // within 5 minutes of the hour's expiry
		var wg sync.WaitGroup
		tokens := make([]string, 50)
		errs := make([]error, 50)
		for i := range 50 {
			wg.Go(func() { tokens[i], errs[i] = e.svc.TokenFor(e.ctx, e.mb.ID) })
		}
		wg.Wait()
		for i := range 50 {
			if errs[i] != nil || tokens[i] == "" || tokens[i] == first || tokens[i] != tokens[0] {
				t.Fatalf("caller %d: %q, %v (first %q)", i, tokens[i], errs[i], tokens[0])
			}
		}
		if n := e.idp.RefreshCount(support); n != 1 {
			t.Errorf("50 concurrent callers caused %d refreshes, want 1", n)
		}
	})
}

func TestRotatedRefreshTokenPersists(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// The stand-in refuses a superseded refresh token: only the saved
		// rotated one works from then on.
		e := newEnv(t, db, func(o *fakeidp.Options) { o.RefreshTokenReuse = fakeidp.ReuseRefused })
		e.connect(e.mb)
		seen := map[string]bool{e.refreshToken(e.mb.ID): true}
		for i := range 3 {
			e.clock.Advance(time.Hour)
			if err := e.svc.RefreshNow(e.ctx, e.mb.ID); err != nil {
				t.Fatalf("refresh %d: %v", i, err)
			}
			rt := e.refreshToken(e.mb.ID)
			if seen[rt] {
				t.Fatalf("refresh %d kept an old refresh token", i)
			}
			seen[rt] = true
			if a := e.auth(e.mb.ID); !a.LastRefreshAt.Equal(e.clock.Now().UTC().Truncate(time.Millisecond)) || !a.ExpiresAt.Equal(a.LastRefreshAt.Add(90*oauth.Day)) {
				t.Errorf("refresh %d: last refresh %v, expires %v", i, a.LastRefreshAt, a.ExpiresAt)
			}
		}
		if st := e.status(e.mb.ID); st.State != store.AuthOK {
			t.Errorf("state = %s", st.State)
		}
	})
}

func TestExpiringAtDay81(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb) // maximum age: Microsoft's default 90 days
		e.days(81, e.mb.ID, func(day int, st oauth.Status) {
			want := store.AuthOK
			if day >= 80 {
				want = store.AuthExpiring
			}
			if st.State != want || st.Overdue {
				t.Fatalf("day %d: %s (overdue %v), want %s", day, st.State, st.Overdue, want)
			}
		})
		if _, err := e.svc.Evaluate(e.ctx, e.mb.ID); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "expiring" {
			t.Fatalf("notices at day 81 = %q, want one expiring", got)
		}
		// Past the due date the provider still accepts: overdue, still
		// fetching, one louder notice.
		e.days(10, e.mb.ID, nil)
		st := e.status(e.mb.ID)
		if st.State != store.AuthExpiring || !st.Overdue || !st.Fetching() {
			t.Errorf("day 91: %+v", st)
		}
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); err != nil {
			t.Errorf("token while overdue: %v", err)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "expiring,overdue" {
			t.Errorf("notices at day 91 = %q", got)
		}
	})
}

func TestMaxAgeZeroStaysOK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		zero := time.Duration(0)
		if _, err := e.svc.SetMaxAge(e.ctx, e.mb.ID, &zero); err != nil {
			t.Fatal(err)
		}
		e.days(201, e.mb.ID, func(day int, st oauth.Status) {
			if st.State != store.AuthOK || !st.ReauthDueAt.IsZero() {
				t.Fatalf("day %d: %+v", day, st)
			}
		})
		if n := e.notices(e.mb.ID); len(n) != 0 {
			t.Errorf("notices = %v", n)
		}
	})
}

func TestRevokedNeedsReauth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		if err := e.idp.Revoke(support); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Minute) // RefreshNow skips a refresh made a moment ago
		err := e.svc.RefreshNow(e.ctx, e.mb.ID)
		if !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("refresh after revocation: %v", err)
		}
		st := e.status(e.mb.ID)
		if st.State != store.AuthNeedsReauth || st.Code != "AADSTS50173" || !strings.Contains(st.Reason, "password was changed or reset") {
			t.Errorf("status = %+v", st)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "needs_reauth" {
			t.Errorf("notices = %q", got)
		}
	})
}

func TestClientSecretExpiredIsProviderFault(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		e.connect(e.sales)
		if err := e.idp.ExpireClientSecret(clientID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Minute)
		err := e.svc.RefreshNow(e.ctx, e.mb.ID)
		if !errors.Is(err, oauth.ErrProviderFault) || errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("refresh with an expired secret: %v", err)
		}
		for _, id := range []int64{e.mb.ID, e.sales.ID} {
			st := e.status(id)
			if st.State != store.AuthProviderFault || st.Code != "AADSTS7000222" || !strings.Contains(st.Reason, "update the client secret") {
				t.Errorf("mailbox %d: %+v", id, st)
			}
		}
		// A new secret in the settings: the next refresh clears it.
		if err := e.idp.SetClientSecret(clientID, "new~secret", time.Time{}); err != nil {
			t.Fatal(err)
		}
		e.svc = e.service("new~secret")
		if err := e.svc.RefreshNow(e.ctx, e.mb.ID); err != nil {
			t.Fatal(err)
		}
		if st := e.status(e.mb.ID); st.State != store.AuthOK {
			t.Errorf("after a new secret: %+v", st)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "provider_fault,restored" {
			t.Errorf("notices = %q", got)
		}
	})
}

func TestTemporarilyUnavailableChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		e.clock.Advance(2 * time.Hour)
		before := e.auth(e.mb.ID)
		e.idp.SetTemporarilyUnavailable(100)
		_, err := e.svc.TokenFor(e.ctx, e.mb.ID)
		var pe *oauth.ProviderError
		if !errors.Is(err, oauth.ErrTemporary) || !errors.As(err, &pe) || pe.RetryAfter <= 0 {
			t.Fatalf("token while unavailable: %v", err)
		}
		if after := e.auth(e.mb.ID); after != before {
			t.Errorf("a temporary failure changed the row:\n%+v\n%+v", before, after)
		}
		if n := e.notices(e.mb.ID); len(n) != 0 {
			t.Errorf("notices = %v", n)
		}
		// One failure, then the retry inside the same call succeeds.
		e.idp.SetTemporarilyUnavailable(1)
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); err != nil {
			t.Errorf("token after one transient failure: %v", err)
		}
	})
}

// TestTokensNeverLeak drives success and every failure, then searches the
// errors, the logs and (SQLite) the database files for any token.
func TestTokensNeverLeak(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		var secrets []string
		var errs []error
		e.connect(e.mb)
		e.connect(e.sales)
		keep := func(id int64) {
			tok, err := e.svc.TokenFor(e.ctx, id)
			errs = append(errs, err)
			if tok != "" {
				secrets = append(secrets, tok)
			}
			if a, err := db.MailboxAuth(e.ctx, id); err == nil && a.RefreshTokenSealed != "" {
				secrets = append(secrets, e.refreshToken(id))
			}
		}
		keep(e.mb.ID)
		keep(e.sales.ID)
		e.clock.Advance(2 * time.Hour)
		keep(e.mb.ID)
		e.idp.SetTemporarilyUnavailable(10)
		e.clock.Advance(2 * time.Hour)
		keep(e.sales.ID)
		e.idp.SetTemporarilyUnavailable(0)
		e.idp.Revoke(support)
		errs = append(errs, e.svc.RefreshNow(e.ctx, e.mb.ID))
		e.idp.ExpireClientSecret(clientID)
		errs = append(errs, e.svc.RefreshNow(e.ctx, e.sales.ID))
		_, err := e.svc.Complete(e.ctx, session, e.signIn(e.mb.ID, agent, false))
		errs = append(errs, err)

		if len(secrets) < 4 {
			t.Fatalf("collected only %d tokens", len(secrets))
		}
		var text strings.Builder
		for _, err := range errs {
			if err != nil {
				text.WriteString(err.Error() + "\n")
			}
		}
		notices, _ := db.Notices(e.ctx, store.NoticeFilter{})
		for _, n := range notices {
			text.WriteString(n.Message + "\n")
		}
		for _, st := range []int64{e.mb.ID, e.sales.ID} {
			s := e.status(st)
			text.WriteString(s.Reason + s.Code + "\n")
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "mailbox_id=") {
			t.Fatalf("no logs captured: %q", logs)
		}
		var files [][]byte
		if db.Dialect() == "sqlite" {
			for _, name := range []string{"postdesk.db", "postdesk.db-wal", "postdesk.db-shm"} {
				if b, err := os.ReadFile(filepath.Join(db.DataDir(), name)); err == nil {
					files = append(files, b)
				}
			}
			if len(files) == 0 {
				t.Fatal("no database files to search")
			}
		}
		for _, s := range secrets {
			if strings.Contains(text.String(), s) || strings.Contains(logs, s) {
				t.Errorf("a token appears in errors, notices or logs")
			}
			for _, b := range files {
				if strings.Contains(string(b), s) {
					t.Errorf("a token appears in the database file in the clear")
				}
			}
		}
	})
}

func TestExpiresAtPassedWithoutRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		e.connect(e.sales)
		e.clock.Advance(91 * oauth.Day)
		// Evaluate alone (no provider call) sees expires_at passed.
		st, err := e.svc.Evaluate(e.ctx, e.mb.ID)
		if err != nil || st.State != store.AuthNeedsReauth || st.Code != "expired" || !strings.Contains(st.Reason, "90 days") {
			t.Fatalf("evaluate after 91 idle days: %+v, %v", st, err)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "needs_reauth" {
			t.Errorf("notices = %q", got)
		}
		// A refresh that cannot reach the provider past expires_at does not
		// keep the mailbox hoping.
		e.idp.SetTemporarilyUnavailable(100)
		if err := e.svc.RefreshNow(e.ctx, e.sales.ID); !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("refresh past expires_at while unavailable: %v", err)
		}
		if st := e.status(e.sales.ID); st.State != store.AuthNeedsReauth || st.Code != "expired" {
			t.Errorf("sales@: %+v", st)
		}
	})
}
