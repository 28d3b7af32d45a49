package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A Microsoft mailbox's transports are part of its settings over the API:
// IMAP and SMTP by default, Graph on request (PATCH changes only what it
// names); a password mailbox cannot choose Graph, nor anyone a transport
// that does not exist.
func TestMailboxTransports(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := asAdmin(f)
		type transports struct {
			ID     int64 `json:"id"`
			Server *struct {
				Fetch string `json:"fetch_transport"`
				Send  string `json:"send_transport"`
			} `json:"server"`
		}
		var ms transports
		f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"sales@example.com","auth":"microsoft"}`, admin).decode(t, http.StatusCreated, &ms)
		if ms.Server == nil || ms.Server.Fetch != "imap" || ms.Server.Send != "smtp" {
			t.Fatalf("a new Microsoft mailbox = %+v", ms.Server)
		}
		path := fmt.Sprintf("/api/v1/mailboxes/%d", ms.ID)
		var up transports
		f.do(t, http.MethodPatch, path, `{"send_transport":"graph"}`, admin).decode(t, http.StatusOK, &up)
		if up.Server.Fetch != "imap" || up.Server.Send != "graph" {
			t.Errorf("after PATCH send_transport = %+v", up.Server)
		}
		f.do(t, http.MethodPatch, path, `{"fetch_transport":"pop3"}`, admin).wantError(t, http.StatusUnprocessableEntity, `mail is fetched over imap or graph, not "pop3"`)
		f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"help@example.com","auth":"password","imap_host":"imap.example.com",
			"password":"x","fetch_transport":"graph"}`, admin).wantError(t, http.StatusUnprocessableEntity, "Microsoft Graph is only for mailboxes that sign in with Microsoft 365")
	})
}
