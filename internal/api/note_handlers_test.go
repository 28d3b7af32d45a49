package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestCreateNote(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := fmt.Sprintf("/api/v1/tickets/%d/notes", f.ticketID)

		var n noteJSON
		f.do(t, http.MethodPost, path, `{"body":"  Called Ann: the fire is out.\r\n"}`).decode(t, http.StatusCreated, &n)
		if n.ID == 0 || n.Kind != "note" || n.Body != "Called Ann: the fire is out." || n.Author == nil ||
			n.Author.ID != f.user.ID || n.Author.Email != "agent@example.com" || n.CreatedAt.IsZero() {
			t.Errorf("note = %+v", n)
		}

		var tk ticketJSON
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "").decode(t, http.StatusOK, &tk)
		if len(tk.Notes) != 1 || tk.Notes[0].ID != n.ID || tk.Notes[0].Body != n.Body || !tk.Notes[0].CreatedAt.Equal(n.CreatedAt) {
			t.Errorf("GET shows notes %+v, want the new one", tk.Notes)
		}
		if tk.Status != "open" {
			t.Errorf("a note changed the status to %s", tk.Status)
		}

		// A NUL cannot be stored: the answer shows the note as kept.
		f.do(t, http.MethodPost, path, `{"body":"a\u0000b"}`).decode(t, http.StatusCreated, &n)
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "").decode(t, http.StatusOK, &tk)
		if n.Body != "ab" || len(tk.Notes) != 2 || tk.Notes[1].Body != n.Body {
			t.Errorf("note with a NUL answered as %q, stored as %+v", n.Body, tk.Notes)
		}
	})
}

func TestCreateNoteErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := fmt.Sprintf("/api/v1/tickets/%d/notes", f.ticketID)
		json := withHeader("Content-Type", "application/json")
		for _, c := range []struct {
			name, path, body string
			opts             []func(*http.Request)
			status           int
			want             string
		}{
			{"empty note", path, `{"body":""}`, nil, 422, "the note is empty"},
			{"blank note", path, `{"body":" \n\t "}`, nil, 422, "the note is empty"},
			{"no body field", path, `{}`, nil, 422, "the note is empty"},
			{"too long", path, `{"body":"` + strings.Repeat("a", 65<<10) + `"}`, nil, 422, "longer than 64 KB"},
			{"missing ticket", "/api/v1/tickets/777/notes", `{"body":"hi"}`, nil, 404, "ticket 777 not found"},
			{"bad ticket id", "/api/v1/tickets/x/notes", `{"body":"hi"}`, nil, 400, `ticket id must be a positive integer, not "x"`},
			{"unknown field", path, `{"body":"hi","internal":true}`, nil, 400, `unknown field "internal" in request body; this request accepts "body"`},
			{"wrong type", path, `{"body":42}`, nil, 400, `field "body" must be a string, not a JSON number`},
			{"not an object", path, `["hi"]`, nil, 400, "request body must be a JSON object"},
			{"null", path, ` null `, nil, 400, "request body must be a JSON object"},
			{"syntax error", path, `{"body": hi}`, nil, 400, "request body is not valid JSON"},
			{"truncated", path, `{"body": "hi"`, nil, 400, "request body is not valid JSON: it ends too early"},
			{"two objects", path, `{"body":"a"} {"body":"b"}`, nil, 400, "request body must hold exactly one JSON object"},
			{"empty request body", path, "", []func(*http.Request){json}, 400, "request body is empty"},
			{"too large", path, `{"body":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413, "request body is larger than 1048576 bytes"},
			{"no content type", path, `{"body":"hi"}`, []func(*http.Request){withHeader("Content-Type", "")}, 415, "(got no Content-Type)"},
			{"text content type", path, `{"body":"hi"}`, []func(*http.Request){withHeader("Content-Type", "text/plain")}, 415, `send Content-Type: application/json (got Content-Type "text/plain")`},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.do(t, http.MethodPost, c.path, c.body, c.opts...).wantError(t, c.status, c.want)
			})
		}
		// With a charset parameter the media type is still JSON.
		var n noteJSON
		f.do(t, http.MethodPost, path, `{"body":"ok"}`, withHeader("Content-Type", "application/json; charset=utf-8")).decode(t, http.StatusCreated, &n)

		var tk ticketJSON
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "").decode(t, http.StatusOK, &tk)
		if len(tk.Notes) != 1 {
			t.Errorf("refused requests added notes: %+v", tk.Notes)
		}
	})
}
