package mailmsg

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// SanitizeOptions tunes SanitizeHTML.
type SanitizeOptions struct {
	// AllowRemoteImages keeps http(s) images and CSS url() references;
	// otherwise they are removed and counted (they are how senders track
	// opens).
	AllowRemoteImages bool
	// CIDURL, when set, maps the Content-ID of an inline part to the URL
	// that serves it; cid: references are rewritten with it.
	CIDURL func(cid string) string
}

// Sanitized is the result of SanitizeHTML.
type Sanitized struct {
	HTML          string
	BlockedImages int // remote images and CSS url() references removed
}

// safeStyles are the CSS properties kept in style attributes; bluemonday
// checks each value. Positioning is left out so mail cannot overlay the UI.
var safeStyles = []string{
	"color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
	"font-variant", "text-align", "text-decoration", "text-transform", "text-indent", "line-height",
	"letter-spacing", "word-spacing", "white-space", "vertical-align", "direction",
	"margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
	"padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
	"border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
	"border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
	"width", "height", "max-width", "min-width", "max-height", "min-height",
	"display", "list-style-type", "table-layout", "float", "clear", "text-overflow", "overflow-wrap", "word-break",
}

var (
	cssURL        = regexp.MustCompile(`(?i)url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*))\s*\)`)
	cssDangerous  = regexp.MustCompile(`(?i)expression|javascript:|vbscript:|behavior|-moz-binding|@import|\\`)
	emailPolicyFn = sync.OnceValue(emailPolicy)
)

// emailPolicy is bluemonday's UGC policy adapted for email: tables and their
// presentational attributes, <font> and <center>, images (http, https, cid
// and data:image), and inline styles limited to safeStyles. Relative URLs
// are refused (they would point at our own server). The policy is built
// once and only read afterwards; bluemonday policies are safe for
// concurrent use.
func emailPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("http", "https", "mailto", "tel", "cid")
	p.AllowDataURIImages()
	p.AllowElements("font", "center", "span", "div", "u", "s", "strike", "big", "small")
	p.AllowAttrs("color", "face", "size").OnElements("font")
	p.AllowAttrs("align", "valign", "bgcolor", "width", "height", "border", "cellpadding", "cellspacing",
		"colspan", "rowspan", "dir").OnElements("table", "thead", "tbody", "tfoot", "tr", "td", "th", "col", "colgroup")
	p.AllowAttrs("align", "dir").OnElements("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "span", "center", "img")
	p.AllowAttrs("src", "alt", "title", "width", "height", "border", "hspace", "vspace").OnElements("img")
	p.AllowAttrs("background").OnElements("table", "td", "th", "tr")
	p.AllowStyles(safeStyles...).Globally()
	p.AllowStyles("background", "background-image").MatchingHandler(safeCSSBackground).Globally()
	return p
}

// safeCSSBackground accepts a background value whose url()s are http(s),
// cid or data:image, and nothing script-like.
func safeCSSBackground(v string) bool {
	if cssDangerous.MatchString(v) {
		return false
	}
	for _, m := range cssURL.FindAllStringSubmatch(v, -1) {
		u := strings.ToLower(strings.TrimSpace(m[1] + m[2] + m[3]))
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") &&
			!strings.HasPrefix(u, "cid:") && !strings.HasPrefix(u, "data:image/") {
			return false
		}
	}
	return true
}

// SanitizeHTML makes an email's HTML safe to show (bluemonday UGC-like
// policy adapted for email: keeps tables, inline styles limited to safe
// properties, images). Scripts, event handlers, forms, iframes, objects,
// <style> and <meta> elements, javascript:/data: URLs (except data:image for
// inline images) are removed. Remote images (http/https src, and CSS url())
// are blocked unless opts.AllowRemoteImages; blocked ones are counted in the
// result. cid: references are rewritten with opts.CIDURL(contentID) when
// set. Links get target=_blank rel="noopener noreferrer nofollow".
func SanitizeHTML(s string, opts SanitizeOptions) Sanitized {
	clean := emailPolicyFn().Sanitize(s)
	var out strings.Builder
	out.Grow(len(clean))
	res := Sanitized{}
	z := html.NewTokenizer(strings.NewReader(clean))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			out.Write(raw)
			continue
		}
		tok := z.Token()
		changed := false
		attrs := tok.Attr[:0]
		for _, a := range tok.Attr {
			switch {
			case (a.Key == "src" && tok.DataAtom == atom.Img) || a.Key == "background":
				v, keep := rewriteImageURL(a.Val, opts, &res.BlockedImages)
				changed = changed || v != a.Val || !keep
				if !keep {
					continue
				}
				a.Val = v
			case a.Key == "style":
				v := rewriteStyle(a.Val, opts, &res.BlockedImages)
				changed = changed || v != a.Val
				if v == "" {
					continue
				}
				a.Val = v
			case tok.DataAtom == atom.A && (a.Key == "target" || a.Key == "rel"):
				changed = true
				continue
			}
			attrs = append(attrs, a)
		}
		tok.Attr = attrs
		if tok.DataAtom == atom.A && hasAttr(tok.Attr, "href") {
			tok.Attr = append(tok.Attr,
				html.Attribute{Key: "target", Val: "_blank"},
				html.Attribute{Key: "rel", Val: "noopener noreferrer nofollow"})
			changed = true
		}
		if changed {
			out.WriteString(tok.String())
		} else {
			out.Write(raw)
		}
	}
	res.HTML = out.String()
	return res
}

func hasAttr(attrs []html.Attribute, k string) bool {
	for _, a := range attrs {
		if a.Key == k {
			return true
		}
	}
	return false
}

// rewriteImageURL applies the image rules to one URL: cid: through CIDURL,
// remote ones blocked unless allowed, data:image kept, anything else
// dropped.
func rewriteImageURL(v string, opts SanitizeOptions, blocked *int) (string, bool) {
	t := strings.TrimSpace(v)
	l := strings.ToLower(t)
	switch {
	case strings.HasPrefix(l, "cid:"):
		if opts.CIDURL == nil {
			return t, true
		}
		id := t[4:]
		if u, err := url.PathUnescape(id); err == nil {
			id = u
		}
		return opts.CIDURL(strings.Trim(id, "<>")), true
	case strings.HasPrefix(l, "http://"), strings.HasPrefix(l, "https://"), strings.HasPrefix(l, "//"):
		if opts.AllowRemoteImages && !strings.HasPrefix(l, "//") {
			return t, true
		}
		*blocked++
		return "", false
	case strings.HasPrefix(l, "data:image/"):
		return t, true
	}
	return "", false
}

// rewriteStyle applies the image rules to a style attribute, one
// declaration at a time: url()s go through rewriteImageURL (a blocked one
// drops its declaration), and a declaration with any other CSS function
// that is not a pure computation (safeCSSFunctions) is dropped; those that
// load a URL (urlCSSFunctions: image-set(), cross-fade(), src(), ...) are
// counted as blocked images. Functions are found in the declaration as CSS
// reads it (cssCanonical: comments removed, escapes decoded, any case), so
// "U\72 L(", "ur/**/l(" or "IMAGE-SET(" hide nothing; a declaration with
// an escape or a comment keeps no url() at all.
func rewriteStyle(style string, opts SanitizeOptions, blocked *int) string {
	var kept []string
	for _, decl := range splitCSSDecls(style) {
		if strings.TrimSpace(decl) == "" {
			continue
		}
		canon := cssCanonical(decl)
		ok, urls := true, 0
		for _, m := range cssFunction.FindAllStringSubmatch(canon, -1) {
			name := m[1]
			switch {
			case name == "url":
				urls++
			case safeCSSFunctions[name]:
			default:
				if urlCSSFunctions[strings.TrimPrefix(name, vendorPrefix.FindString(name))] {
					*blocked++
				}
				ok = false
			}
		}
		if strings.Contains(canon, "@import") || strings.Contains(canon, "expression") || strings.Contains(canon, "javascript:") {
			ok = false
		}
		plain := !strings.ContainsAny(decl, "\\") && !strings.Contains(decl, "/*")
		if ok && urls > 0 && (!plain || len(cssURL.FindAllStringIndex(decl, -1)) != urls) {
			// A url() written in a way the rewriting below would not see.
			*blocked += urls
			ok = false
		}
		if !ok {
			continue
		}
		decl = cssURL.ReplaceAllStringFunc(decl, func(m string) string {
			sub := cssURL.FindStringSubmatch(m)
			u, keep := rewriteImageURL(sub[1]+sub[2]+sub[3], opts, blocked)
			if !keep {
				ok = false
				return m
			}
			return `url("` + strings.NewReplacer(`"`, "%22", `\`, "%5C", "\n", "").Replace(u) + `")`
		})
		if ok {
			kept = append(kept, strings.TrimSpace(decl))
		}
	}
	return strings.Join(kept, "; ")
}

var (
	// cssFunction is a function token (CSS Syntax 3 4.3.4: an identifier
	// and "("; spaces before the "(" are matched too, to be safe).
	cssFunction  = regexp.MustCompile(`([a-z0-9_-]+)\s*\(`)
	vendorPrefix = regexp.MustCompile(`^-(webkit|moz|ms|o)-`)
)

// urlCSSFunctions are the CSS functions that load a URL or an image, by
// the specifications: url() and src() (CSS Values 4 4.5), image(),
// image-set(), cross-fade() and element() (CSS Images 4 2), attr() (CSS
// Values 5: attr(x url) yields a URL). Vendor prefixes
// (-webkit-image-set()) are removed before the lookup.
var urlCSSFunctions = map[string]bool{
	"url": true, "src": true, "image": true, "image-set": true, "cross-fade": true, "element": true, "attr": true,
}

// safeCSSFunctions only compute a value from their arguments: colours,
// arithmetic, gradients. Any other function drops its declaration.
var safeCSSFunctions = map[string]bool{
	"rgb": true, "rgba": true, "hsl": true, "hsla": true, "hwb": true, "lab": true, "lch": true, "oklab": true, "oklch": true,
	"color": true, "color-mix": true, "calc": true, "min": true, "max": true, "clamp": true,
	"linear-gradient": true, "radial-gradient": true, "conic-gradient": true,
	"repeating-linear-gradient": true, "repeating-radial-gradient": true, "repeating-conic-gradient": true,
	"-webkit-linear-gradient": true, "-webkit-radial-gradient": true,
}

// cssCanonical is CSS text as a CSS parser reads it, for finding
// functions: comments removed (CSS Syntax 3 4.3.2), escapes decoded (4.3.7:
// up to six hex digits and one optional white space, an escaped newline
// vanishes, any other escaped character is itself), lower case.
func cssCanonical(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += end + 4
			}
		case s[i] == '\\' && i+1 < len(s):
			j := i + 1
			for j < len(s) && j-i <= 6 && isHex(s[j]) {
				j++
			}
			if j > i+1 {
				n, _ := strconv.ParseUint(s[i+1:j], 16, 32)
				r := rune(n)
				if n == 0 || n > unicode.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
					r = unicode.ReplacementChar
				}
				b.WriteRune(r)
				if j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
					j++
				}
				i = j
				continue
			}
			if s[i+1] != '\n' {
				b.WriteByte(s[i+1])
			}
			i += 2
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return strings.ToLower(b.String())
}

// splitCSSDecls splits on semicolons outside parentheses and quotes.
func splitCSSDecls(s string) []string {
	var parts []string
	depth, start := 0, 0
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == ';' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
