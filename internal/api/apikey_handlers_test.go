package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type apiKeyJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Expired    bool       `json:"expired"`
	Current    bool       `json:"current"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Key        string     `json:"key"`
}

func withKey(key string) func(*http.Request) { return withHeader("Authorization", "Bearer "+key) }

func TestMyAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()

		var list struct {
			APIKeys []apiKeyJSON `json:"api_keys"`
		}
		f.do(t, http.MethodGet, "/api/v1/me/apikeys", "").decode(t, http.StatusOK, &list)
		if len(list.APIKeys) != 1 || list.APIKeys[0].ID != f.keyID || !list.APIKeys[0].Current || list.APIKeys[0].ExpiresAt != nil ||
			list.APIKeys[0].Key != "" || !strings.HasPrefix(f.key, list.APIKeys[0].Prefix) {
			t.Fatalf("list = %+v", list)
		}

		// Create a key that expires in two days: the key is answered once.
		expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		var created apiKeyJSON
		r := f.do(t, http.MethodPost, "/api/v1/me/apikeys", fmt.Sprintf(`{"name":"deploy","expires_at":%q}`, expires.Format(time.RFC3339)))
		r.decode(t, http.StatusCreated, &created)
		if !strings.HasPrefix(created.Key, auth.APIKeyPrefix) || created.Name != "deploy" || created.ExpiresAt == nil || !created.ExpiresAt.Equal(expires) ||
			r.header.Get("Location") != fmt.Sprintf("/api/v1/me/apikeys/%d", created.ID) {
			t.Fatalf("created = %+v (Location %q)", created, r.header.Get("Location"))
		}
		var me map[string]any
		f.do(t, http.MethodGet, "/api/v1/me", "", withKey(created.Key)).decode(t, http.StatusOK, &me)
		if me["email"] != "agent@example.com" {
			t.Fatalf("me with the new key = %v", me)
		}
		f.do(t, http.MethodGet, "/api/v1/me/apikeys", "", withKey(created.Key)).decode(t, http.StatusOK, &list)
		if len(list.APIKeys) != 2 || list.APIKeys[1].ID != created.ID || !list.APIKeys[1].Current || list.APIKeys[0].Current || list.APIKeys[1].Key != "" {
			t.Fatalf("list with two keys = %+v", list)
		}
		if strings.Contains(f.waitLog(t, "api key created"), created.Key) {
			t.Fatal("a key reached the log")
		}

		for _, tc := range []struct{ name, body, want string }{
			{"in the past", `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, "expires_at must be in the future"},
			{"too far", `{"name":"x","expires_at":"9999-12-31T00:00:00Z"}`, "expires_at must be within 10 years"},
			{"not a time", `{"name":"x","expires_at":"90d"}`, `a time in the request body is not an RFC 3339 time such as 2027-03-31T00:00:00Z: "90d"`},
			{"unknown field", `{"name":"x","lifetime":"90d"}`, `unknown field "lifetime"`},
			{"long name", `{"name":"` + strings.Repeat("n", 101) + `"}`, "name must be at most 100 characters"},
		} {
			r := f.do(t, http.MethodPost, "/api/v1/me/apikeys", tc.body)
			if r.status != http.StatusUnprocessableEntity && r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d", tc.name, r.status)
			}
			r.wantError(t, r.status, tc.want)
		}

		// A key that expires cannot make one that outlives it.
		for _, body := range []string{`{"name":"forever"}`, fmt.Sprintf(`{"expires_at":%q}`, expires.Add(time.Hour).Format(time.RFC3339))} {
			f.do(t, http.MethodPost, "/api/v1/me/apikeys", body, withKey(created.Key)).
				wantError(t, http.StatusUnprocessableEntity, "expires_at must be set and no later than the expiry of the key making this request")
		}
		var child apiKeyJSON
		f.do(t, http.MethodPost, "/api/v1/me/apikeys", fmt.Sprintf(`{"name":"child","expires_at":%q}`, expires.Add(-time.Hour).Format(time.RFC3339)),
			withKey(created.Key)).decode(t, http.StatusCreated, &child)

		// Revoking: another user's key is not found; one's own is revoked.
		var adminKey store.APIKey
		if adminKey, _, _ = db.APIKeyByHash(ctx, auth.HashToken(f.adminKey)); adminKey.ID == 0 {
			t.Fatal("no admin key")
		}
		f.do(t, http.MethodDelete, fmt.Sprintf("/api/v1/me/apikeys/%d", adminKey.ID), "").wantError(t, http.StatusNotFound, "not found among your keys")
		f.do(t, http.MethodGet, "/api/v1/me", "", asAdmin(f)).decode(t, http.StatusOK, &me)
		var revoked apiKeyJSON
		f.do(t, http.MethodDelete, fmt.Sprintf("/api/v1/me/apikeys/%d", child.ID), "").decode(t, http.StatusOK, &revoked)
		if revoked.ID != child.ID || revoked.RevokedAt == nil {
			t.Fatalf("revoked = %+v", revoked)
		}
		f.do(t, http.MethodGet, "/api/v1/me", "", withKey(child.Key)).wantError(t, http.StatusUnauthorized, "invalid API key")
		f.do(t, http.MethodDelete, fmt.Sprintf("/api/v1/me/apikeys/%d", child.ID), "").wantError(t, http.StatusNotFound, "already revoked")
		f.do(t, http.MethodDelete, "/api/v1/me/apikeys/x", "").wantError(t, http.StatusBadRequest, "API key id must be a positive integer")

		// A key past its expiry is refused, and says so to its holder.
		old := auth.APIKeyPrefix + auth.RandomToken(32)
		err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.CreateAPIKey(ctx, &store.APIKey{UserID: f.user.ID, Name: "old", Prefix: old[:10], KeyHash: auth.HashToken(old),
				CreatedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-time.Second)})
		})
		if err != nil {
			t.Fatal(err)
		}
		r = f.do(t, http.MethodGet, "/api/v1/me", "", withKey(old))
		r.wantError(t, http.StatusUnauthorized, "API key expired")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="postdesk", error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		f.do(t, http.MethodGet, "/api/v1/me/apikeys", "").decode(t, http.StatusOK, &list)
		if len(list.APIKeys) != 3 || !list.APIKeys[2].Expired || list.APIKeys[1].Expired {
			t.Fatalf("list with an expired key = %+v", list)
		}

		// A key stored with an expiry past year 9999 (possible before
		// expiries were bounded) is listed at the latest time JSON can
		// carry, not a 500 for the whole list.
		err = db.Write(ctx, func(tx *store.Tx) error {
			return tx.CreateAPIKey(ctx, &store.APIKey{UserID: f.user.ID, Name: "forever-ish", Prefix: "pdk_farfar", KeyHash: "far-future-hash",
				ExpiresAt: time.Date(275817, 8, 15, 0, 0, 0, 0, time.UTC)})
		})
		if err != nil {
			t.Fatal(err)
		}
		f.do(t, http.MethodGet, "/api/v1/me/apikeys", "").decode(t, http.StatusOK, &list)
		far := list.APIKeys[len(list.APIKeys)-1]
		if far.Name != "forever-ish" || far.ExpiresAt == nil || far.ExpiresAt.Year() != 9999 {
			t.Errorf("far-future key listed as %+v", far)
		}
	})
}
