package mailmsg

import (
	"fmt"
	"html"
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

// cssExfiltration is every CSS way we know to make a mail reader fetch a
// URL: each function of the specifications that loads one (CSS Values 4
// url() and src(), CSS Images 4 image(), image-set(), cross-fade(), with
// their -webkit- forms) and @import, each written plainly and with the
// tricks a CSS parser undoes (case, escapes, comments, spaces).
func cssExfiltration() []string {
	const u = `"https://evil.test/x.png"`
	loads := []string{
		"url(" + u + ")", "url(https://evil.test/x.png)", "src(" + u + ")", "image(" + u + ")",
		"image-set(" + u + " 1x)", "image-set(url(https://evil.test/x.png) 1x, " + u + " 2x)",
		"-webkit-image-set(" + u + " 1x)", "-webkit-image-set(url(https://evil.test/x.png) 1x)",
		"cross-fade(url(https://evil.test/x.png), url(https://evil.test/y.png), 50%)", "-webkit-cross-fade(" + u + ", " + u + ", 50%)",
		"cross-fade(" + u + " 50%, red)",
	}
	tricks := []func(string) string{
		func(s string) string { return s },
		strings.ToUpper,
		func(s string) string { return strings.Replace(s, "(", " (", 1) },
		func(s string) string { return strings.Replace(s, "(", "/**/(", 1) },
		func(s string) string { return s[:1] + "/**/" + s[1:] },
		func(s string) string { return `\` + fmt.Sprintf("%x", s[0]) + " " + s[1:] },        // \75 rl(
		func(s string) string { return s[:1] + `\` + fmt.Sprintf("%06x", s[1]) + s[2:] },    // u\000072l(
		func(s string) string { return s[:1] + `\` + s[1:] },                                // u\rl(
		func(s string) string { return strings.ReplaceAll(s, "evil.test", `\65 vil.test`) }, // the host escaped
		func(s string) string { return strings.ReplaceAll(s, "https:", `https\:`) },         // an escaped colon
		func(s string) string { return strings.Replace(s, "(", "(\t", 1) },                  // white space inside
	}
	var out []string
	for _, l := range loads {
		for _, tr := range tricks {
			out = append(out, tr(l))
		}
	}
	return out
}

// The done-when table: no style attribute or <style> block keeps a way to
// load a URL, whatever the spelling; each is counted as a blocked image.
func TestSanitizeBlocksCSSThatLoadsURLs(t *testing.T) {
	t.Parallel()
	leaks := func(out string) bool {
		return strings.Contains(cssCanonical(html.UnescapeString(out)), "evil.test")
	}
	for _, v := range cssExfiltration() {
		for _, prop := range []string{"background", "background-image", "border-image", "list-style-image", "content", "cursor", "border", "color"} {
			in := `<div style="` + html.EscapeString(prop+": "+v+"; color: blue") + `">x</div>`
			s := SanitizeHTML(in, SanitizeOptions{})
			if leaks(s.HTML) {
				t.Errorf("style %s: %s\n  kept: %s", prop, v, s.HTML)
			}
			if s := SanitizeHTML(in, SanitizeOptions{AllowRemoteImages: true}); strings.Contains(strings.ToLower(v), "set(") && leaks(s.HTML) {
				t.Errorf("image-set kept with remote images allowed: %s", s.HTML)
			}
		}
		for _, block := range []string{
			"<style>div { background: " + v + " }</style>",
			"<style>@import " + v + ";</style>",
			"<style>@font-face { font-family: x; src: " + v + " }</style>",
			"<svg><style>rect { fill: " + v + " }</style></svg>",
		} {
			if s := SanitizeHTML(block+"<p>hi</p>", SanitizeOptions{}); leaks(s.HTML) || strings.Contains(s.HTML, "<style") {
				t.Errorf("style block: %s\n  kept: %s", block, s.HTML)
			}
		}
	}
	for _, v := range []string{"@import url(https://evil.test/x.css)", `@import "https://evil.test/x.css"`, `@\69 mport "https://evil.test/x.css"`} {
		if s := SanitizeHTML(`<p style="`+html.EscapeString(v)+`">x</p>`, SanitizeOptions{}); leaks(s.HTML) {
			t.Errorf("%s kept: %s", v, s.HTML)
		}
	}
	// Counted: the reader says remote images were blocked.
	s := SanitizeHTML(`<div style="background-image: -webkit-image-set(&quot;https://evil.test/x.png&quot; 1x); color: blue">x</div>`, SanitizeOptions{})
	if s.BlockedImages != 1 || !strings.Contains(s.HTML, `style="color: blue"`) {
		t.Errorf("image-set: blocked %d, html %s", s.BlockedImages, s.HTML)
	}
	// What computes a value stays.
	for _, keep := range []string{"color: rgb(10, 20, 30)", "background: linear-gradient(red, blue)"} {
		if s := SanitizeHTML(`<div style="`+keep+`">x</div>`, SanitizeOptions{}); !strings.Contains(s.HTML, keep) || s.BlockedImages != 0 {
			t.Errorf("%q: %s (blocked %d)", keep, s.HTML, s.BlockedImages)
		}
	}
}

func TestCSSCanonical(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`u\72 l(`: "url(", `\75 rl(`: "url(", `u\000072l(`: "url(", `u\rl(`: "url(", `ur/* x */l(`: "url(",
		`IMAGE-SET(`: "image-set(", `a\
b`: "ab", `\0`: "\uFFFD", `x/* open`: "x", `\`: `\`,
	} {
		if got := cssCanonical(in); got != want {
			t.Errorf("cssCanonical(%q) = %q, want %q", in, got, want)
		}
	}
}
