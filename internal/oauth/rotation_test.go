package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests run the stand-in in its default reuse-detecting mode, slowed
// down, so that any refresh token presented twice revokes the grant and
// shows in idp.Reuses().

// slowIdP delays the token endpoint by d.
func slowIdP(d time.Duration) func(*fakeidp.Options) {
	return func(o *fakeidp.Options) { o.TokenDelay, o.TokenDelayMax = d, d }
}

// active asks the stand-in's introspection whether an access token works.
func (e *env) active(tok string) bool {
	e.t.Helper()
	resp, err := http.PostForm(e.url+"/introspect", url.Values{"token": {tok}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.t.Fatal(err)
	}
	return m["active"] == true
}

func (e *env) noReuse() {
	e.t.Helper()
	if r := e.idp.Reuses(); len(r) != 0 {
		e.t.Fatalf("a spent refresh token was presented again %d times (first %+v): the grant is revoked", len(r), r[0])
	}
}

// The refresh job, the sync and a caller whose token the server refused all
// ask at once: one refresh, and every caller gets its token.
func TestEveryCallerSharesOneRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, slowIdP(400*time.Millisecond))
		e.connect(e.mb)
		for cycle := range 3 {
			e.clock.Advance(56 * time.Minute) // the hour's token is due
			before := e.idp.RefreshCount(support)
			calls := []func() (string, error){
				func() (string, error) { return e.svc.TokenFor(e.ctx, e.mb.ID) },
				func() (string, error) { return "", e.svc.RefreshNow(e.ctx, e.mb.ID) },
				func() (string, error) { return e.svc.FreshToken(e.ctx, e.mb.ID) },
				func() (string, error) { return e.svc.TokenFor(e.ctx, e.mb.ID) },
			}
			tokens := make([]string, len(calls))
			errs := make([]error, len(calls))
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i, call := range calls {
				wg.Go(func() {
					<-gate
					tokens[i], errs[i] = call()
				})
			}
			close(gate)
			wg.Wait()
			for i := range calls {
				if errs[i] != nil {
					t.Fatalf("cycle %d: caller %d: %v", cycle, i, errs[i])
				}
				if tokens[i] != "" && !e.active(tokens[i]) {
					t.Errorf("cycle %d: caller %d got a token the server would refuse", cycle, i)
				}
			}
			if n := e.idp.RefreshCount(support) - before; n != 1 {
				t.Errorf("cycle %d: %d refreshes for four callers at once, want 1", cycle, n)
			}
			e.noReuse()
		}
		if st := e.status(e.mb.ID); st.State != store.AuthOK {
			t.Errorf("state = %s", st.State)
		}
	})
}

// Two processes on one database (two Services, two lease owners) refresh
// the same mailboxes at once, repeatedly: the lease lets one ask the
// provider and the other uses its result.
func TestProcessesShareOneRefresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, slowIdP(300*time.Millisecond))
		e.connect(e.mb)
		e.connect(e.sales)
		other := e.service(secret)
		for cycle := range 4 {
			e.clock.Advance(57 * time.Minute)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []error
			var tokens []string
			for _, svc := range []*oauth.Service{e.svc, other, e.svc, other} {
				for _, id := range []int64{e.mb.ID, e.sales.ID} {
					wg.Go(func() {
						tok, err := svc.TokenFor(e.ctx, id)
						if cycle%2 == 1 && err == nil {
							err = svc.RefreshNow(e.ctx, id)
						}
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							failures = append(failures, err)
						}
						tokens = append(tokens, tok)
					})
				}
			}
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("cycle %d: %v", cycle, errors.Join(failures...))
			}
			e.noReuse()
			for _, tok := range tokens {
				if !e.active(tok) {
					t.Fatalf("cycle %d: a caller got a token the server refuses", cycle)
				}
			}
		}
		for _, id := range []int64{e.mb.ID, e.sales.ID} {
			if st := e.status(id); st.State != store.AuthOK {
				t.Errorf("mailbox %d: %s", id, st.State)
			}
		}
		if n := e.idp.RefreshCount(support); n < 4 || n > 8 {
			t.Errorf("%d refreshes of support@ in 4 cycles, want 4 to 8 (one per cycle, one more for a RefreshNow)", n)
		}
	})
}

// A process that finds another's lease waits for it, then refreshes with
// the newest token itself if the other gave up without refreshing.
func TestWaitsForAnotherProcessLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		e.clock.Advance(58 * time.Minute)
		err := db.Write(e.ctx, func(tx *store.Tx) error {
			_, err := tx.ClaimRefresh(e.ctx, e.mb.ID, "other-process", time.Now(), time.Now().Add(time.Minute))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		const held = 600 * time.Millisecond
		go func() {
			time.Sleep(held)
			db.Write(context.Background(), func(tx *store.Tx) error { return tx.ReleaseRefresh(context.Background(), e.mb.ID, "other-process") })
		}()
		began := time.Now()
		tok, err := e.svc.TokenFor(e.ctx, e.mb.ID)
		if err != nil || !e.active(tok) {
			t.Fatalf("TokenFor = %v", err)
		}
		if took := time.Since(began); took < held {
			t.Errorf("TokenFor refreshed after %v, while another process held the lease for %v", took, held)
		}
		if n := e.idp.RefreshCount(support); n != 1 {
			t.Errorf("%d refreshes, want 1", n)
		}
	})
}

// Close waits for a refresh in flight, even one whose caller gave up, so
// the rotated token is saved; refreshes asked for afterwards are refused.
func TestCloseWaitsForRefreshInFlight(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const delay = 800 * time.Millisecond
		e := newEnv(t, db, slowIdP(delay))
		e.connect(e.mb)
		oldRT := e.refreshToken(e.mb.ID)
		e.clock.Advance(58 * time.Minute)
		requests := e.idp.TokenRequests()
		ctx, cancel := context.WithCancel(e.ctx)
		gaveUp := make(chan error, 1)
		go func() {
			_, err := e.svc.TokenFor(ctx, e.mb.ID)
			gaveUp <- err
		}()
		for e.idp.TokenRequests() == requests {
			time.Sleep(5 * time.Millisecond)
		}
		cancel() // the sync stops first at shutdown
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("TokenFor of a caller that gave up = %v", err)
		}
		closeCtx, stop := context.WithTimeout(e.ctx, 10*time.Second)
		defer stop()
		if err := e.svc.Close(closeCtx); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if e.refreshToken(e.mb.ID) == oldRT {
			t.Fatal("Close returned before the rotated refresh token was saved")
		}
		e.clock.Advance(58 * time.Minute)
		refreshes := e.idp.RefreshCount(support)
		// A call racing the end of the last flight may still share its
		// result; none may start a refresh.
		for deadline := time.Now().Add(2 * time.Second); ; {
			_, err := e.svc.TokenFor(e.ctx, e.mb.ID)
			if errors.Is(err, oauth.ErrClosed) {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("TokenFor after Close = %v, want ErrClosed", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := e.svc.RefreshNow(e.ctx, e.mb.ID); !errors.Is(err, oauth.ErrClosed) {
			t.Errorf("RefreshNow after Close = %v, want ErrClosed", err)
		}
		if n := e.idp.RefreshCount(support); n != refreshes {
			t.Errorf("%d refreshes after Close", n-refreshes)
		}
		// The next process starts from the saved token.
		next := e.service(secret)
		if tok, err := next.TokenFor(e.ctx, e.mb.ID); err != nil || !e.active(tok) {
			t.Fatalf("TokenFor after a restart = %v", err)
		}
		e.noReuse()
	})
}

func TestCloseGivesUpAfterItsDeadline(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), slowIdP(3*time.Second))
	e.connect(e.mb)
	e.clock.Advance(58 * time.Minute)
	requests := e.idp.TokenRequests()
	go e.svc.TokenFor(e.ctx, e.mb.ID)
	for e.idp.TokenRequests() == requests {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	err := e.svc.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, oauth.ErrClosed) {
		t.Fatalf("Close past its deadline = %v", err)
	}
	if !strings.Contains(e.logs.String(), "a rotated refresh token may be lost") {
		t.Errorf("no log line says a refresh was cut short:\n%s", e.logs.String())
	}
	// Let the refresh finish before the database closes.
	if err := e.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Access tokens shorter than the 5-minute margin are not refreshed at
// every request: the margin is a fifth of their lifetime.
func TestRefreshAheadScalesWithLifetime(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *fakeidp.Options) { o.AccessTokenLifetime = 2 * time.Minute })
	e.connect(e.mb)
	for _, step := range []struct {
		advance time.Duration
		refresh int
	}{
		{0, 0}, {30 * time.Second, 0}, {60 * time.Second, 0}, {5 * time.Second, 0}, // 95 s: 25 s left, margin 24 s
		{2 * time.Second, 1}, // 97 s: due
		{10 * time.Second, 1}, {60 * time.Second, 1}, {27 * time.Second, 2},
	} {
		e.clock.Advance(step.advance)
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.idp.RefreshCount(support); n != step.refresh {
			t.Fatalf("after %v more: %d refreshes, want %d", step.advance, n, step.refresh)
		}
	}
}
