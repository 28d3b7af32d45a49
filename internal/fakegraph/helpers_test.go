package fakegraph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
)

const (
	agent    = "agent@example.com"
	customer = "customer@example.net"
	shared   = "support@example.com"
	clientID = "postdesk-test"
)

// world is the stand-in IdP with the stand-in Graph mounted as
// `postdesk fakeidp` mounts it, on a real loopback listener.
type world struct {
	idp  *fakeidp.IdP
	g    *fakegraph.Server
	base string // ".../graph/v1.0"
}

func newWorld(t *testing.T) *world {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: agent, Name: "Agent"}, {Address: customer, Name: "Customer"}}})
	idp.AddApp(fakeidp.App{ClientID: clientID, Name: "Postdesk", RedirectURIs: []string{"http://localhost/cb"}})
	g := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: []string{shared}})
	idp.Mount("/graph/", http.StripPrefix("/graph", g), "graph", "/graph/v1.0")
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return &world{idp: idp, g: g, base: srv.URL + "/graph/v1.0"}
}

// token signs account in with scopes (full URIs, or bare Graph names).
func (w *world) token(t *testing.T, account string, scopes ...string) string {
	t.Helper()
	tok, err := w.idp.IssueTokens(clientID, account, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

const (
	readWrite = "https://graph.microsoft.com/Mail.ReadWrite"
	send      = "https://graph.microsoft.com/Mail.Send"
)

type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (a answer) code() string {
	e, _ := a.json["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) message() string {
	e, _ := a.json["error"].(map[string]any)
	c, _ := e["message"].(string)
	return c
}

func do(t *testing.T, method, u, token, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.json); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, u, b)
		}
	}
	return a
}

// mustError checks a Graph error answer's status, code and shape.
func mustError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.code() != code {
		t.Fatalf("answer %d %s (%s), want %d %s", a.status, a.code(), a.body, status, code)
	}
	e := a.json["error"].(map[string]any)
	inner, _ := e["innerError"].(map[string]any)
	if e["message"] == "" || inner == nil || inner["request-id"] != a.header.Get("request-id") || inner["date"] == "" {
		t.Fatalf("error body lacks Graph's shape: %s", a.body)
	}
}

func mime(from, to, subject, msgID string, extra ...string) []byte {
	h := "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: " + msgID + "\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return []byte(h + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n")
}
