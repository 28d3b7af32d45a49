package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func eventsOf(t *testing.T, db *store.DB, kind string) []string {
	t.Helper()
	events, err := db.EventsSince(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		if e.Kind == kind {
			out = append(out, fmt.Sprintf("%d:%v<-%v", e.MailboxID, e.Data["state"], e.Data["previous"]))
		}
	}
	return out
}

// A sync that starts failing is told once, not at every retry; a success
// arms it again.
func TestSyncFailedToldOncePerOutage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mb store.Mailbox
		at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		put := func(state store.SyncState, errText string) {
			t.Helper()
			at = at.Add(time.Minute)
			err := db.Write(ctx, func(tx *store.Tx) error {
				if mb.ID == 0 {
					var err error
					if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
						return err
					}
				}
				st, err := tx.SyncStatus(ctx, mb.ID)
				if err != nil {
					return err
				}
				st.State, st.UpdatedAt = state, at
				if errText != "" {
					st.LastError, st.LastErrorAt = errText, at
				} else if state.UpToDate() {
					st.LastSuccessAt = at
				}
				return tx.PutSyncStatus(ctx, st)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		put(store.SyncError, "dial: connection refused") // never worked: told
		put(store.SyncError, "dial: connection refused") // retry: not told
		put(store.SyncConnected, "")                     // connected, not yet working
		put(store.SyncError, "fetch: timeout")           // still the same outage
		put(store.SyncSynced, "")                        // working again
		put(store.SyncIdling, "")
		put(store.SyncError, "dial: connection refused") // a new outage: told
		put(store.SyncError, "dial: connection refused")
		got := strings.Join(eventsOf(t, db, store.EventMailboxSyncFailed), ",")
		want := fmt.Sprintf("%d:error<-idle,%d:error<-idling", mb.ID, mb.ID)
		if got != want {
			t.Fatalf("sync_failed events = %q, want %q", got, want)
		}
	})
}

// The authorization state is told only when it changes.
func TestAuthStateChangeToldOnChangeOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		var mb store.Mailbox
		steps := []func(tx *store.Tx) error{
			func(tx *store.Tx) error {
				var err error
				if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
					return err
				}
				// No authorization row yet: nothing to set, nothing told.
				if err := tx.SetAuthState(ctx, mb.ID, store.AuthExpiring, "", "", at); err != nil {
					return err
				}
				return tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: mb.ID, Kind: store.AuthOAuth, Provider: "microsoft", UpdatedAt: at})
			},
			func(tx *store.Tx) error { return tx.SetAuthState(ctx, mb.ID, store.AuthOK, "", "", at) },
			func(tx *store.Tx) error { return tx.SetAuthState(ctx, mb.ID, store.AuthExpiring, "", "", at) },
			func(tx *store.Tx) error { return tx.SetAuthState(ctx, mb.ID, store.AuthExpiring, "", "", at) },
			func(tx *store.Tx) error {
				return tx.ForgetMailboxTokens(ctx, mb.ID, store.AuthNeedsReauth, "AADSTS50173", "revoked", at)
			},
			func(tx *store.Tx) error {
				return tx.SetAuthState(ctx, mb.ID, store.AuthNeedsReauth, "AADSTS50173", "revoked", at)
			},
			func(tx *store.Tx) error { return tx.SetMailboxPassword(ctx, mb.ID, "support", "sealed", at) },
		}
		for i, step := range steps {
			if err := db.Write(ctx, step); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		got := strings.Join(eventsOf(t, db, store.EventMailboxAuthStateChange), ",")
		want := fmt.Sprintf("%d:expiring<-ok,%d:needs_reauth<-expiring,%d:ok<-needs_reauth", mb.ID, mb.ID, mb.ID)
		if got != want {
			t.Fatalf("auth events = %q, want %q", got, want)
		}
	})
}
