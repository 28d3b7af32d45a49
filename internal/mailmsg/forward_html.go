package mailmsg

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlAfterBlock returns the HTML that follows a header block found in the
// rendering of src: the element holding the block's last field (Outlook's
// <p class=MsoNormal>, Gmail's <div class="gmail_attr">, Apple Mail's
// per-field <div>, Thunderbird's headers table) is located by counting the
// text nodes that start with the same label, and everything after it, up to
// the end of the quote container (gmail_quote, blockquote,
// moz-forward-container) or the body, is the original. "" when the element
// cannot be found.
func htmlAfterBlock(src string, lines []fwdLine, b fwdBlock) string {
	occ := 0
	for _, l := range lines[:min(b.lastLabel, len(lines))] {
		if _, key, _ := matchLabel(l.text); key == b.lastLabelKey {
			occ++
		}
	}
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return ""
	}
	var found *html.Node
	seen := 0
	var walk func(n *html.Node, depth int) bool
	walk = func(n *html.Node, depth int) bool {
		if depth > 400 {
			return false
		}
		switch n.Type {
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
				return false
			}
		case html.TextNode:
			if _, key, _ := matchLabel(strings.TrimSpace(normSpace(n.Data))); key != "" && key == b.lastLabelKey {
				if seen == occ {
					found = n
					return true
				}
				seen++
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if walk(c, depth+1) {
				return true
			}
		}
		return false
	}
	if !walk(doc, 0) {
		return ""
	}
	e := found.Parent
	for e != nil && !blockish(e) {
		e = e.Parent
	}
	if e == nil {
		return ""
	}
	if e.DataAtom == atom.Td || e.DataAtom == atom.Th || e.DataAtom == atom.Tr {
		for t := e; t != nil; t = t.Parent {
			if t.DataAtom == atom.Table {
				e = t
				break
			}
		}
	}
	var sb strings.Builder
	for n := e; n != nil && n.DataAtom != atom.Body && n.Type != html.DocumentNode; n = n.Parent {
		for s := n.NextSibling; s != nil; s = s.NextSibling {
			if err := html.Render(&sb, s); err != nil {
				return ""
			}
		}
		if p := n.Parent; p != nil && quoteContainer(p) {
			break
		}
	}
	return strings.TrimSpace(sb.String())
}

func blockish(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch n.DataAtom {
	case atom.P, atom.Div, atom.Td, atom.Th, atom.Tr, atom.Table, atom.Li, atom.Blockquote,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Pre, atom.Section, atom.Article, atom.Body:
		return true
	}
	return false
}

// quoteContainer is an element a client wraps a forwarded message in.
func quoteContainer(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	if n.DataAtom == atom.Blockquote {
		return true
	}
	for _, a := range n.Attr {
		if a.Key == "class" && (strings.Contains(a.Val, "gmail_quote") || strings.Contains(a.Val, "moz-forward-container") || strings.Contains(a.Val, "yahoo_quoted")) {
			return true
		}
	}
	return false
}
