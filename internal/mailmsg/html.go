package mailmsg

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToText renders an email's HTML as plain text: block elements and <br>
// become line breaks, list items get a dash, links keep their URL when it
// differs from their text, script, style and head are skipped, entities are
// decoded and whitespace is collapsed except inside <pre>.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	w := &textWriter{}
	skip := 0 // depth inside script/style/head/title
	pre := 0
	type link struct {
		href  string
		start int
	}
	var links []link
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		switch tt {
		case html.TextToken:
			if skip > 0 {
				continue
			}
			w.text(string(z.Text()), pre > 0)
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			end := tt == html.EndTagToken
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
				if tt == html.SelfClosingTagToken {
					continue
				}
				if end {
					skip = max(skip-1, 0)
				} else {
					skip++
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch a {
			case atom.Br:
				w.newline()
			case atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
				atom.Blockquote, atom.Table, atom.Ul, atom.Ol, atom.Dl, atom.Section,
				atom.Article, atom.Header, atom.Footer, atom.Address, atom.Form, atom.Center:
				w.paragraph()
			case atom.Tr, atom.Dd, atom.Dt, atom.Li, atom.Hr:
				w.newline()
				if a == atom.Li && !end {
					w.raw("- ")
				}
				if a == atom.Hr {
					w.raw("----")
					w.newline()
				}
			case atom.Td, atom.Th:
				if !end {
					w.space()
				}
			case atom.Pre:
				w.paragraph()
				if end {
					pre = max(pre-1, 0)
				} else {
					pre++
				}
			case atom.Img:
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "alt" && strings.TrimSpace(string(v)) != "" {
						w.text("["+strings.TrimSpace(string(v))+"]", false)
					}
				}
			case atom.A:
				if end {
					if n := len(links); n > 0 {
						l := links[n-1]
						links = links[:n-1]
						txt := strings.TrimSpace(w.b.String()[min(l.start, w.b.Len()):])
						href := strings.TrimPrefix(l.href, "mailto:")
						if l.href != "" && txt != "" && !strings.Contains(txt, href) {
							w.text(" <"+l.href+">", false)
						}
					}
					continue
				}
				href := ""
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = strings.TrimSpace(string(v))
					}
				}
				if !strings.HasPrefix(href, "http://") && !strings.HasPrefix(href, "https://") && !strings.HasPrefix(href, "mailto:") {
					href = ""
				}
				if len(links) < 100 {
					links = append(links, link{href: href, start: w.b.Len()})
				}
			}
		}
	}
	return w.String()
}

// textWriter collapses whitespace and line breaks as HTMLToText writes.
type textWriter struct {
	b            strings.Builder
	newlines     int // pending line breaks
	spacePending bool
}

func (w *textWriter) flush() {
	if w.b.Len() == 0 {
		w.newlines, w.spacePending = 0, false
		return
	}
	if w.newlines > 0 {
		w.b.WriteString(strings.Repeat("\n", min(w.newlines, 2)))
	} else if w.spacePending {
		w.b.WriteByte(' ')
	}
	w.newlines, w.spacePending = 0, false
}

func (w *textWriter) text(s string, pre bool) {
	if pre {
		if s == "" {
			return
		}
		w.flush()
		w.b.WriteString(s)
		return
	}
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if s == "" {
		return
	}
	lead := isHTMLSpace(s[0])
	trail := isHTMLSpace(s[len(s)-1])
	fields := strings.Fields(s)
	if len(fields) == 0 {
		w.spacePending = true
		return
	}
	if lead {
		w.spacePending = true
	}
	w.flush()
	w.b.WriteString(strings.Join(fields, " "))
	w.spacePending = trail
}

func (w *textWriter) raw(s string) {
	w.flush()
	w.b.WriteString(s)
}

func (w *textWriter) space() { w.spacePending = true }

func (w *textWriter) newline() { w.newlines = max(w.newlines, 1) }

func (w *textWriter) paragraph() { w.newlines = 2 }

func (w *textWriter) String() string { return strings.TrimSpace(w.b.String()) }

func isHTMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// unflow joins the soft line breaks of text/plain; format=flowed (RFC 3676
// section 4): a line ending in a space continues on the next line of the
// same quote depth; space-stuffing is undone; "-- " stays a signature line.
func unflow(s string, delsp bool) string {
	var b strings.Builder
	b.Grow(len(s))
	open, depth := false, 0
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		d := 0
		for d < len(line) && line[d] == '>' {
			d++
		}
		content := strings.TrimPrefix(line[d:], " ")
		if open && d != depth {
			b.WriteByte('\n')
			open = false
		}
		if !open {
			if d > 0 {
				b.WriteString(strings.Repeat(">", d) + " ")
			}
			depth, open = d, true
		}
		flowed := strings.HasSuffix(content, " ") && content != "-- "
		if flowed && delsp {
			content = content[:len(content)-1]
		}
		b.WriteString(content)
		if !flowed {
			b.WriteByte('\n')
			open = false
		}
	}
	return b.String()
}
