package mailmsg

import (
	"strings"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Shape 1 (ShapeWroteLine): Outlook 2019 and Outlook for Mac forward with a
// reply's attribution line and the original indented by four spaces:
//
//	FW: Printer broken
//
//	On 28/10/2026 12:46, "Ann Example" <ann@customer.example> wrote:
//
//	    Hello, ...
//
// Only the subject tells it from a reply, so the rule is strict (rule 5 in
// forward.go): a forward prefix, nothing but the forwarder's unquoted words
// above, an address in the line, and an indented original (a <blockquote>
// in HTML). Anything else with a "wrote:" line stays a reply.

// maxWroteScan bounds how many lines above the attribution are read: the
// forwarder's note is short.
const maxWroteScan = 200

// wroteVerbLangs maps the verb of an attribution line to its language,
// longest and most specific first ("napisał" before "napisal").
var wroteVerbLangs = []struct{ verb, lang string }{
	{"a écrit", "fr"}, {"escribió", "es"}, {"ha scritto", "it"}, {"geschreven", "nl"}, {"schreef", "nl"},
	{"escreveu", "pt"}, {"napisał", "pl"}, {"kirjoitti", "fi"}, {"napsal", "cs"}, {"napísal", "sk"},
	{"írta", "hu"}, {"a scris", "ro"}, {"je napisao", "hr"}, {"je napisala", "hr"}, {"написав", "uk"},
	{"написал", "ru"}, {"yazdı", "tr"}, {"schrieb", "de"}, {"skrev", "sv"}, {"wrote", "en"},
}

// wroteFillers are the words that stand between the date and an unquoted
// name ("heeft Ann <a@x> geschreven", "użytkownik Ann <a@x> napisał").
var wroteFillers = []string{"heeft ", "użytkownik ", "skrev ", "schrieb ", "tarihinde "}

// wroteLine is an attribution line read.
type wroteLine struct {
	name, addr, date, lang string
}

// parseWroteLine reads an attribution line that names the sender's
// address; ok is false for anything else.
func parseWroteLine(text string) (w wroteLine, ok bool) {
	if len(text) > 400 || !strings.HasSuffix(text, ":") || !strings.Contains(text, "@") {
		return w, false
	}
	low := strings.ToLower(text)
	for _, v := range wroteVerbLangs {
		if strings.Contains(low, v.verb) {
			w.lang = v.lang
			break
		}
	}
	if w.lang == "" {
		return w, false
	}
	lt := strings.LastIndexByte(text, '<')
	gt := strings.LastIndexByte(text, '>')
	if lt < 0 || gt < lt {
		return w, false
	}
	addr := strings.TrimPrefix(text[lt+1:gt], "mailto:")
	if strings.Count(addr, "@") != 1 || strings.ContainsAny(addr, " \t,;<>\"") {
		return w, false
	}
	w.addr = addr
	before := strings.TrimRight(text[:lt], " ")
	start := len(before)
	if r, size := lastRuneOf(before); strings.ContainsRune("\"»“”'", r) {
		open := strings.LastIndexAny(before[:len(before)-size], "\"«„“'")
		if open >= 0 {
			start = open
			w.name = strings.TrimSpace(strings.Trim(before[open:], "\"«»„“”' "))
		}
	} else {
		// An unquoted name: after the last comma, or after a filler word.
		seg := before
		if i := strings.LastIndex(seg, ", "); i >= 0 {
			seg = seg[i+2:]
		}
		for _, f := range wroteFillers {
			if i := strings.Index(strings.ToLower(seg), f); i >= 0 {
				seg = seg[i+len(f):]
			}
		}
		start = len(before) - len(seg)
		w.name = strings.TrimSpace(seg)
	}
	// The date is what is left: before the name, or after the address
	// (Finnish and Hungarian put it there).
	w.date = strings.TrimSpace(text[:start] + " " + text[gt+1:])
	return w, true
}

func lastRuneOf(s string) (rune, int) {
	for i := len(s) - 1; i >= 0 && i >= len(s)-4; i-- {
		if s[i] < 0x80 || s[i] >= 0xC0 {
			r := []rune(s[i:])
			if len(r) == 1 {
				return r[0], len(s) - i
			}
			return 0, 0
		}
	}
	return 0, 0
}

// hasForwardPrefix is a cheap first check: does the subject start with a
// forward prefix in some language ("VS:" included)?
func hasForwardPrefix(subject string) bool {
	k := classifySubject(subject, "da")
	return k == subjForward
}

// indented says whether a body line is indented as Outlook indents the
// original: four spaces or a tab.
func indented(l fwdLine) bool {
	return l.depth == 0 && (strings.HasPrefix(l.raw, "    ") || strings.HasPrefix(l.raw, "\t"))
}

// findWrote looks for shape 1 in lines (all of them, or the lines above a
// header block found). htmlSrc is the HTML the lines were rendered from,
// "" for a text body.
func findWrote(lines []fwdLine, htmlSrc, subject string, loc *time.Location, depth int) (Forward, bool) {
	if !hasForwardPrefix(subject) {
		return Forward{}, false
	}
	for i := 0; i < len(lines) && i < maxWroteScan; i++ {
		l := lines[i]
		if l.text == "" {
			continue
		}
		if l.depth > 0 || indented(l) {
			return Forward{}, false // quoted or indented text above: not the forwarder's words alone
		}
		if k, _, _, _ := matchMarker(l.text); k != mkNone {
			return Forward{}, false
		}
		w, ok := parseWroteLine(l.text)
		if !ok {
			continue
		}
		return wroteForward(lines, i, w, htmlSrc, subject, loc, depth)
	}
	return Forward{}, false
}

func wroteForward(lines []fwdLine, i int, w wroteLine, htmlSrc, subject string, loc *time.Location, depth int) (Forward, bool) {
	j := i + 1
	for j < len(lines) && lines[j].text == "" {
		j++
	}
	if j >= len(lines) {
		return Forward{}, false
	}
	end := len(lines)
	origHTML := ""
	if htmlSrc == "" {
		if !indented(lines[j]) {
			return Forward{}, false
		}
		for end = j; end < len(lines); end++ {
			if lines[end].text != "" && !indented(lines[end]) {
				break
			}
		}
	} else {
		var ok bool
		if origHTML, ok = blockquoteAfter(htmlSrc, lines[i].text); !ok {
			return Forward{}, false
		}
	}
	lang := w.lang
	if lang == "sv" { // "skrev": Swedish, Danish or Norwegian
		switch {
		case fdISO.MatchString(w.date):
		case classifySubject(subject, "da") == subjForward && classifySubject(subject, "sv") != subjForward:
			lang = "da" // "VS:"; Danish writes "kl. 12.46", Norwegian "kl. 12:46"
			if fdTime.MatchString(w.date) {
				lang = "no"
			}
		}
	}
	if classifySubject(subject, lang) != subjForward {
		return Forward{}, false
	}
	f := Forward{Source: ForwardInlineText, Client: "outlook-mac", Shape: ShapeWroteLine, Language: lang, Depth: depth,
		From: Address{Name: w.name, Address: w.addr}, Subject: stripForwardPrefix(subject, lang),
		Note: joinLines(lines[:i], 0), DateText: w.date}
	if list := fwdAddresses(w.name + " <" + w.addr + ">"); len(list) == 1 {
		f.From = list[0]
	}
	f.Date, f.DateZoneAssumed, _ = parseFwdDate(w.date, lang, loc)
	var sb strings.Builder
	for _, l := range lines[j:end] {
		raw := l.raw
		if l.depth == 0 {
			raw = strings.TrimPrefix(raw, "\t")
			if strings.HasPrefix(raw, "    ") {
				raw = raw[4:]
			}
		}
		if l.depth > 0 {
			raw = strings.Repeat("> ", l.depth) + raw
		}
		sb.WriteString(raw)
		sb.WriteByte('\n')
	}
	f.Text = strings.Trim(sb.String(), "\n \t")
	if htmlSrc != "" {
		f.Source, f.HTML = ForwardInlineHTML, origHTML
	}
	return f, true
}

// stripForwardPrefix removes the forward prefixes from a subject
// ("FW: Fwd: x" is "x"); tags in brackets stay.
func stripForwardPrefix(subject, lang string) string {
	s := strings.TrimSpace(normSpace(subject))
	for range 4 {
		i := strings.IndexAny(s, ":：")
		if i <= 0 || i > 24 || classifySubject(s[:i+1]+" x", lang) != subjForward {
			break
		}
		_, size := firstRune(s[i:])
		s = strings.TrimSpace(s[i+size:])
	}
	return s
}

// blockquoteAfter returns the inner HTML of the first <blockquote> after
// the text node holding the attribution line; ok is false when there is
// none.
func blockquoteAfter(src, attribution string) (string, bool) {
	if !strings.Contains(strings.ToLower(src), "<blockquote") {
		return "", false
	}
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return "", false
	}
	key := attribution
	if len(key) > 40 {
		key = key[len(key)-40:]
	}
	seen := false
	var found *html.Node
	var walk func(n *html.Node, depth int) bool
	walk = func(n *html.Node, depth int) bool {
		if depth > 400 {
			return false
		}
		switch {
		case n.Type == html.TextNode && !seen:
			seen = strings.Contains(strings.TrimSpace(normSpace(n.Data)), key)
		case n.Type == html.ElementNode && n.DataAtom == atom.Blockquote && seen:
			found = n
			return true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if walk(c, depth+1) {
				return true
			}
		}
		return false
	}
	if !walk(doc, 0) {
		return "", false
	}
	var sb strings.Builder
	for c := found.FirstChild; c != nil; c = c.NextSibling {
		if err := html.Render(&sb, c); err != nil {
			return "", false
		}
	}
	return strings.TrimSpace(sb.String()), true
}
