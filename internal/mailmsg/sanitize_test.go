package mailmsg

import (
	"strings"
	"testing"
)

func TestSanitizeHostile(t *testing.T) {
	t.Parallel()
	m := parseFile(t, "hostile_html.eml")
	s := SanitizeHTML(m.HTML, SanitizeOptions{CIDURL: func(cid string) string { return "/inline/" + cid }})
	for _, bad := range []string{"<script", "alert", "onerror", "onload", "onclick", "javascript:", "<iframe",
		"<form", "<input", "<object", "<meta", "refresh", "expression", "track.phish.example", "data:text", "<style", "<svg"} {
		if strings.Contains(strings.ToLower(s.HTML), bad) {
			t.Errorf("sanitized HTML has %q:\n%s", bad, s.HTML)
		}
	}
	for _, good := range []string{`<img src="/inline/logo@phish.example" alt="logo">`, `style="color: red"`,
		`<a href="https://phish.example/login" target="_blank" rel="noopener noreferrer nofollow">Log in</a>`, "<td>cell</td>"} {
		if !strings.Contains(s.HTML, good) {
			t.Errorf("sanitized HTML lacks %q:\n%s", good, s.HTML)
		}
	}
	if s.BlockedImages != 3 { // pixel, CSS background-image, td background
		t.Errorf("BlockedImages = %d, want 3", s.BlockedImages)
	}
}

func TestSanitizeRemoteImages(t *testing.T) {
	t.Parallel()
	in := `<p style="background-image: url('https://x.example/bg.png'); color: blue">x</p><img src="https://x.example/a.png" alt="a"><img src="data:image/png;base64,iVBORw0KGgo=">`
	blocked := SanitizeHTML(in, SanitizeOptions{})
	if blocked.BlockedImages != 2 || strings.Contains(blocked.HTML, "x.example") || !strings.Contains(blocked.HTML, "data:image/png") {
		t.Errorf("blocked: %d %s", blocked.BlockedImages, blocked.HTML)
	}
	allowed := SanitizeHTML(in, SanitizeOptions{AllowRemoteImages: true})
	if allowed.BlockedImages != 0 || !strings.Contains(allowed.HTML, `src="https://x.example/a.png"`) ||
		!strings.Contains(allowed.HTML, `url(&#34;https://x.example/bg.png&#34;)`) {
		t.Errorf("allowed: %d %s", allowed.BlockedImages, allowed.HTML)
	}
}

func TestSanitizeKeepsEmailLayout(t *testing.T) {
	t.Parallel()
	m := parseFile(t, "outlook_desktop.eml")
	s := SanitizeHTML(m.HTML, SanitizeOptions{})
	for _, want := range []string{"<b>überfällig</b>", `<span style="color: #1F3864">Contoso GmbH</span>`} {
		if !strings.Contains(s.HTML, want) {
			t.Errorf("lacks %q:\n%s", want, s.HTML)
		}
	}
	in := `<table width="600" cellpadding="0" bgcolor="#ffffff"><tr><td align="center" style="padding: 10px; font-family: Arial">Hi</td></tr></table><font color="red" face="Arial">f</font>`
	out := SanitizeHTML(in, SanitizeOptions{}).HTML
	for _, want := range []string{`width="600"`, `bgcolor="#ffffff"`, `align="center"`, `padding: 10px`, `<font color="red" face="Arial">`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q: %s", want, out)
		}
	}
}
