package web

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

// cssExfiltrationHTML tries each CSS function that loads a URL (url, src,
// image, image-set, -webkit-image-set, cross-fade) and @import, plainly
// and spelled to slip past a naive filter, in style attributes and
// <style> blocks. Every URL names the host "evil.test"; the variants
// that escape it still contain "vil.test".
func cssExfiltrationHTML() string {
	const u = `&quot;https://evil.test/x.png&quot;`
	values := []string{
		"url(" + u + ")", "URL(https://evil.test/x.png)", `u\72 l(https://evil.test/x.png)`, `u\rl(https://evil.test/x.png)`,
		"ur/**/l(https://evil.test/x.png)", "src(" + u + ")", "image(" + u + ")",
		"image-set(" + u + " 1x)", "IMAGE-SET(" + u + " 1x)", `image\-set(` + u + ` 1x)`, "image-set/**/(" + u + " 1x)",
		"-webkit-image-set(" + u + " 1x)", `-webkit-image-set(url(https://\65 vil.test/x.png) 1x)`,
		"cross-fade(url(https://evil.test/x.png), " + u + ", 50%)", "-webkit-cross-fade(" + u + ", " + u + ", 50%)",
	}
	var b strings.Builder
	for i, v := range values {
		fmt.Fprintf(&b, `<div style="background-image: %s; color: blue">variant %d</div>`, v, i)
		fmt.Fprintf(&b, `<style>.v%d { background: %s } @import %s;</style>`, i, strings.ReplaceAll(v, "&quot;", `"`), strings.ReplaceAll(v, "&quot;", `"`))
	}
	b.WriteString(`<p style="@import url(https://evil.test/x.css)">import</p>`)
	return b.String()
}

// The page shows an email whose CSS tries to fetch from elsewhere: none of
// it is left in the frame's HTML, each attempt is counted as a blocked
// image, and the safe rest of the style stays.
func TestTicketPageBlocksCSSThatLoadsURLs(t *testing.T) {
	e := newEnv(t)
	hostile := cssExfiltrationHTML()
	id, _ := e.ticket(store.Ticket{Subject: "Newsletter", RequesterAddress: "news@evil.test"},
		store.Message{HTMLBody: hostile, TextBody: "newsletter", FromAddress: "news@sender.test"})
	c := e.signedIn()
	for _, path := range []string{fmt.Sprintf("/tickets/%d", id), fmt.Sprintf("/tickets/%d?images=1", id)} {
		res, body := e.get(c, path)
		wantStatus(t, res, http.StatusOK)
		// The frame's srcdoc is HTML escaped inside HTML: unescape twice.
		frame := strings.ToLower(html.UnescapeString(html.UnescapeString(body)))
		frame = strings.ReplaceAll(frame, "news@evil.test", "") // the requester, shown as text
		for _, bad := range []string{"vil.test", "image-set", "cross-fade", "src(", "image(", "@import", ".v0 {"} {
			if bad == "vil.test" && strings.Contains(path, "images=1") {
				continue // the agent asked for remote images: plain url()s load (only them: checked below)
			}
			if strings.Contains(frame, bad) {
				t.Errorf("%s: the page holds %q", path, bad)
			}
		}
		wantContains(t, body, "variant 0", "color: blue")
		if strings.Contains(path, "images=1") {
			if got := strings.Count(frame, "vil.test"); got > 2 { // url(...) of variants 0 and 1
				t.Errorf("with images allowed, %d URLs of evil.test are left; only the 2 plain url()s may be", got)
			}
		} else if m := regexp.MustCompile(`(\d+) remote images blocked`).FindStringSubmatch(body); m == nil || m[1] == "0" {
			t.Errorf("the page does not say remote images were blocked")
		}
	}
}
