package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/logtest"
)

func TestPanicIsA500WithIncidentID(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	h := &handler{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret database detail") })
	srv := httptest.NewServer(h.logRequests(h.recoverPanics(boom)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusInternalServerError || id == "" || !strings.Contains(body["error"], "incident "+id) {
		t.Fatalf("status %d, X-Request-Id %q, body %v", resp.StatusCode, id, body)
	}
	if strings.Contains(body["error"], "secret") {
		t.Errorf("the client saw the panic: %v", body)
	}
	srv.Close() // waits for the handler, and so for its log line
	if l := logs.String(); !strings.Contains(l, "secret database detail") || !strings.Contains(l, `"request_id":"`+id+`"`) || !strings.Contains(l, `"status":500`) {
		t.Errorf("the panic was not logged under the incident id:\n%s", l)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New without dependencies did not panic")
		}
	}()
	New(Options{})
}

func TestPanicAfterTheResponseBeganAbortsIt(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	h := &handler{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	half := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("{\"partial\":"))
		panic("late failure")
	})
	srv := httptest.NewServer(h.logRequests(h.recoverPanics(half)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/me")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client read a short answer without an error")
	}
	srv.Close()
	if l := logs.String(); !strings.Contains(l, "late failure") || !strings.Contains(l, `"msg":"api request failed"`) {
		t.Errorf("the aborted request was not logged:\n%s", l)
	}
}
