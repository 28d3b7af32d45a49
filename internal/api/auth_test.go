package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()

		// A second key, revoked.
		revoked, k, err := f.auth.CreateAPIKey(ctx, f.user.ID, "old")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.RevokeAPIKey(ctx, k.ID, time.Now()) }); err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name, header, want, challenge string
		}{
			{"missing", "", "missing API key: send Authorization: Bearer <key>", `Bearer realm="postdesk"`},
			{"wrong key", "Bearer pdk_" + strings.Repeat("x", 43), "invalid API key", `Bearer realm="postdesk", error="invalid_token"`},
			{"not a postdesk key", "Bearer abc", "invalid API key", `Bearer realm="postdesk", error="invalid_token"`},
			{"revoked key", "Bearer " + revoked, "invalid API key", `Bearer realm="postdesk", error="invalid_token"`},
			{"basic scheme", "Basic YWdlbnQ6c2VjcmV0", "malformed Authorization header: use the Bearer scheme", `Bearer realm="postdesk", error="invalid_request"`},
			{"key as the whole header", f.key, "malformed Authorization header: use the Bearer scheme", `Bearer realm="postdesk", error="invalid_request"`},
			{"bearer without key", "Bearer", "malformed Authorization header: no API key after Bearer", `Bearer realm="postdesk", error="invalid_request"`},
			{"bearer with blank key", "Bearer   ", "malformed Authorization header: no API key after Bearer", `Bearer realm="postdesk", error="invalid_request"`},
			{"two words", "Bearer " + f.key + " extra", "must be one word", `Bearer realm="postdesk", error="invalid_request"`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, path := range []string{"/api/v1/me", "/api/v1/tickets/1", "/api/v1/no/such/route"} {
					r := f.do(t, http.MethodGet, path, "", withHeader("Authorization", c.header))
					r.wantError(t, http.StatusUnauthorized, c.want)
					if got := r.header.Get("WWW-Authenticate"); got != c.challenge {
						t.Errorf("WWW-Authenticate = %q, want %q", got, c.challenge)
					}
					if strings.Contains(string(r.body), f.key) || strings.Contains(string(r.body), revoked) {
						t.Errorf("the answer echoes a key: %s", r.body)
					}
				}
			})
		}

		t.Run("scheme is case-insensitive", func(t *testing.T) {
			r := f.do(t, http.MethodGet, "/api/v1/me", "", withHeader("Authorization", "bearer "+f.key))
			var me map[string]any
			r.decode(t, http.StatusOK, &me)
		})

		t.Run("log names the key by id, never the key", func(t *testing.T) {
			r := f.do(t, http.MethodGet, "/api/v1/me", "")
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			logs := f.waitLog(t, fmt.Sprintf(`"api_key_id":%d`, f.keyID))
			if strings.Contains(logs, f.key) || strings.Contains(logs, revoked) {
				t.Errorf("the log holds an API key:\n%s", logs)
			}
		})
	})
}
