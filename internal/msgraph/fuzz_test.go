package msgraph

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseDelta feeds Graph's delta answer, untrusted input, to the
// parser: it never panics, and a page it accepts has one link of the
// Graph origin and ids on every item.
func FuzzParseDelta(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"AAMk1","receivedDateTime":"2026-12-01T10:00:00Z","internetMessageId":"<a@b>"},{"id":"AAMk2","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/mailFolders/x/messages/delta?$deltatoken=t"}`))
	f.Add([]byte(`{"value":[],"@odata.nextLink":"https://evil.example/x"}`))
	f.Add([]byte(`{"value":[{"id":""}],"@odata.nextLink":"https://graph.microsoft.com/a","@odata.deltaLink":"https://graph.microsoft.com/b"}`))
	f.Add([]byte(`{"value":[{"id":"x","receivedDateTime":"yesterday"}],"@odata.deltaLink":"https://graph.microsoft.com/b"}`))
	c := &Client{}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseDelta(bytes.NewReader(data), c.sameOrigin)
		if err != nil {
			return
		}
		if (p.NextLink == "") == (p.DeltaLink == "") || !c.sameOrigin(p.NextLink+p.DeltaLink) {
			t.Fatalf("accepted page with links %q %q", p.NextLink, p.DeltaLink)
		}
		for _, it := range p.Items {
			if it.ID == "" {
				t.Fatal("accepted an item without an id")
			}
		}
	})
}

// FuzzResponseError feeds arbitrary error answers to the classifier.
func FuzzResponseError(f *testing.F) {
	f.Add(429, "5", []byte(`{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}`))
	f.Add(403, "", []byte(`{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled."}}`))
	f.Add(410, "Wed, 02 Dec 2026 08:00:00 GMT", []byte(`not json`))
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retry}}, Body: io.NopCloser(bytes.NewReader(body))}
		e := responseError("op", resp, time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC))
		if e.Kind == "" || e.Status != status || e.RetryAfter < 0 || !strings.HasPrefix(e.Error(), "msgraph: op: ") || e.Explain() == "" {
			t.Fatalf("error %+v", e)
		}
	})
}
