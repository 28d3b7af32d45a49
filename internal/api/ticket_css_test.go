package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The API's html says remote images are blocked: so is every CSS way to
// fetch a URL (url, src, image, image-set, -webkit-image-set, cross-fade,
// @import), however it is spelled.
func TestMessageHTMLBlocksCSSThatLoadsURLs(t *testing.T) {
	t.Parallel()
	const u = `&quot;https://evil.test/x.png&quot;`
	values := []string{
		"url(" + u + ")", "URL(https://evil.test/x.png)", `u\72 l(https://evil.test/x.png)`, `u\rl(https://evil.test/x.png)`,
		"ur/**/l(https://evil.test/x.png)", "src(" + u + ")", "image(" + u + ")",
		"image-set(" + u + " 1x)", "IMAGE-SET(" + u + " 1x)", `image\-set(` + u + ` 1x)`, "image-set (" + u + " 1x)",
		"-webkit-image-set(" + u + " 1x)", `-webkit-image-set(url(https://\65 vil.test/x.png) 1x)`,
		"cross-fade(url(https://evil.test/x.png), " + u + ", 50%)", "-webkit-cross-fade(" + u + ", " + u + ", 50%)",
	}
	var b strings.Builder
	for i, v := range values {
		fmt.Fprintf(&b, `<div style="background-image: %s; color: blue">variant %d</div><div style="background: %s">b</div>`, v, i, v)
		fmt.Fprintf(&b, `<style>.v%d { background: %s } @import %s;</style>`, i, strings.ReplaceAll(v, "&quot;", `"`), strings.ReplaceAll(v, "&quot;", `"`))
	}
	b.WriteString(`<p style="@import url(https://evil.test/x.css)">import</p>`)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var id int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			id, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mailbox.ID, Subject: "Newsletter", RequesterAddress: "news@sender.test",
				CreatedAt: testNow, MessageCount: 1})
			if err != nil {
				return err
			}
			return tx.InsertMessage(ctx, &store.Message{MailboxID: f.mailbox.ID, TicketID: id, Direction: "in", Kind: store.KindEmail,
				DedupeKey: "mid:css@sender.test", FromAddress: "news@sender.test", HTMLBody: b.String(), ReceivedAt: testNow})
		})
		if err != nil {
			t.Fatal(err)
		}
		var tk struct {
			Messages []struct {
				HTML          string `json:"html"`
				BlockedImages int    `json:"blocked_images"`
			} `json:"messages"`
		}
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", id), "").decode(t, http.StatusOK, &tk)
		if len(tk.Messages) != 1 {
			t.Fatalf("%d messages", len(tk.Messages))
		}
		m := tk.Messages[0]
		low := strings.ToLower(m.HTML)
		for _, bad := range []string{"vil.test", "image-set", "cross-fade", "src(", "image(", "@import", "<style", ".v0 {"} {
			if strings.Contains(low, bad) {
				t.Errorf("html holds %q: %s", bad, m.HTML)
			}
		}
		if !strings.Contains(m.HTML, "variant 0") || !strings.Contains(m.HTML, "color: blue") {
			t.Errorf("html lost the safe rest: %s", m.HTML)
		}
		if m.BlockedImages < len(values) {
			t.Errorf("blocked_images = %d, want at least %d (one per variant in the background: declarations)", m.BlockedImages, len(values))
		}
	})
}
