package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// withWebhooks serves the fixture's API again with webhooks managed by the
// real job side (the test event's job is inserted, not worked here).
func withWebhooks(t *testing.T, f *fixture, allowPrivate bool) {
	t.Helper()
	ctx := context.Background()
	if err := jobs.Migrate(ctx, f.db, nil); err != nil {
		t.Fatal(err)
	}
	hooks, err := jobs.NewWebhooks(jobs.WebhookOptions{DB: f.db, Vault: f.vault})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(f.db, jobs.Options{Register: jobs.All(hooks.Register)})
	if err != nil {
		t.Fatal(err)
	}
	hooks.SetRunner(runner)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: f.db, Auth: f.auth, Desk: desk.New(f.db), Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
		Webhooks: desk.NewWebhookAdmin(f.db, f.vault, allowPrivate, hooks.EnqueueTest)}))
	f.srv.Close()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
}

type webhookJSON struct {
	ID            int64    `json:"id"`
	URL           string   `json:"url"`
	Events        []string `json:"events"`
	IncludeBodies bool     `json:"include_bodies"`
	Enabled       bool     `json:"enabled"`
	Secret        string   `json:"secret"`
	LastDelivery  *struct {
		Event string `json:"event"`
		State string `json:"state"`
	} `json:"last_delivery"`
}

func TestWebhooksAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		withWebhooks(t, f, false)

		f.do(t, "GET", "/api/v1/webhooks", "").wantError(t, http.StatusForbidden, "only admins")
		f.do(t, "POST", "/api/v1/webhooks", `{"url":"https://hooks.example.com/x","events":["ticket.created"]}`).
			wantError(t, http.StatusForbidden, "only admins")

		for body, want := range map[string]string{
			`{"url":"ftp://hooks.example.com/x","events":["ticket.created"]}`:                    "https or http only",
			`{"url":"http://127.0.0.1:9/x","events":["ticket.created"]}`:                         "private or internal address",
			`{"url":"http://169.254.169.254/x","events":["ticket.created"]}`:                     "private or internal address",
			`{"url":"https://hooks.example.com/x","events":[]}`:                                  "at least one event",
			`{"url":"https://hooks.example.com/x","events":["ticket.deleted"]}`:                  "not an event Postdesk sends",
			`{"url":"https://hooks.example.com/x","events":["ticket.created"],"secret":"short"}`: "16 to 200 characters",
		} {
			f.do(t, "POST", "/api/v1/webhooks", body, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, want)
		}

		var created webhookJSON
		res := f.do(t, "POST", "/api/v1/webhooks", `{"url":"https://hooks.example.com/postdesk","events":["ticket.customer_replied","ticket.created"]}`, asAdmin(f))
		res.decode(t, http.StatusCreated, &created)
		if !strings.HasPrefix(created.Secret, "whsec_") || !created.Enabled || created.IncludeBodies ||
			strings.Join(created.Events, ",") != "ticket.created,ticket.customer_replied" || created.LastDelivery != nil {
			t.Fatalf("created: %s", res.body)
		}
		if loc := res.header.Get("Location"); loc != fmt.Sprintf("/api/v1/webhooks/%d", created.ID) {
			t.Errorf("Location %q", loc)
		}
		path := fmt.Sprintf("/api/v1/webhooks/%d", created.ID)

		// The secret is never answered again.
		for _, p := range []string{"/api/v1/webhooks", path} {
			if res := f.do(t, "GET", p, "", asAdmin(f)); res.status != 200 || strings.Contains(string(res.body), created.Secret) ||
				strings.Contains(string(res.body), "secret") {
				t.Errorf("GET %s: %d %s", p, res.status, res.body)
			}
		}

		var changed webhookJSON
		f.do(t, "PATCH", path, `{"enabled":false,"include_bodies":true}`, asAdmin(f)).decode(t, http.StatusOK, &changed)
		if changed.Enabled || !changed.IncludeBodies || changed.Secret != "" || changed.URL != created.URL || len(changed.Events) != 2 {
			t.Errorf("changed: %+v", changed)
		}
		f.do(t, "PATCH", path, `{"new_secret":true}`, asAdmin(f)).decode(t, http.StatusOK, &changed)
		if !strings.HasPrefix(changed.Secret, "whsec_") || changed.Secret == created.Secret {
			t.Errorf("new secret: %q", changed.Secret)
		}
		f.do(t, "PATCH", path, `{"url":"http://localhost:8080/"}`, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, "private or internal")
		f.do(t, "PATCH", "/api/v1/webhooks/999", `{"enabled":true}`, asAdmin(f)).wantError(t, http.StatusNotFound, "webhook 999 not found")

		var test struct {
			ID       int64  `json:"id"`
			Event    string `json:"event"`
			State    string `json:"state"`
			EventID  int64  `json:"event_id"`
			Attempts int    `json:"attempts"`
		}
		f.do(t, "POST", path+"/test", "", asAdmin(f)).decode(t, http.StatusAccepted, &test)
		if test.Event != "webhook.test" || test.State != "pending" || test.EventID != 0 || test.ID == 0 {
			t.Errorf("test delivery: %+v", test)
		}
		var list struct {
			Deliveries []struct {
				ID    int64  `json:"id"`
				Event string `json:"event"`
			} `json:"deliveries"`
		}
		f.do(t, "GET", path+"/deliveries", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Deliveries) != 1 || list.Deliveries[0].ID != test.ID {
			t.Errorf("deliveries: %+v", list)
		}
		f.do(t, "GET", path+"/deliveries?limit=0", "", asAdmin(f)).wantError(t, http.StatusBadRequest, "limit")
		var one webhookJSON
		f.do(t, "GET", path, "", asAdmin(f)).decode(t, http.StatusOK, &one)
		if one.LastDelivery == nil || one.LastDelivery.Event != "webhook.test" {
			t.Errorf("last delivery: %+v", one)
		}

		if res := f.do(t, "DELETE", path, "", asAdmin(f)); res.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.status, res.body)
		}
		f.do(t, "GET", path, "", asAdmin(f)).wantError(t, http.StatusNotFound, "not found")
		f.do(t, "GET", path+"/deliveries", "", asAdmin(f)).wantError(t, http.StatusNotFound, "not found")
		if strings.Contains(f.logs.String(), created.Secret) || strings.Contains(f.logs.String(), changed.Secret) {
			t.Error("a secret was logged")
		}
	})
}
