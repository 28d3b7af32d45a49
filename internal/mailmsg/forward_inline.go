package mailmsg

import (
	"strings"
	"time"
)

// maxFwdLines bounds how many lines of a body are searched for a forward.
const maxFwdLines = 20000

// fwdLine is one body line with its ">" quoting removed.
type fwdLine struct {
	depth int    // number of ">" quote marks
	raw   string // the content after the quote marks, right-trimmed
	text  string // raw trimmed, Unicode spaces made plain
	split bool   // a field of a one-line header block, split by splitOneLine
}

func toLines(s string) []fwdLine {
	var out []fwdLine
	for line := range strings.Lines(s) {
		if len(out) >= maxFwdLines {
			break
		}
		line = strings.TrimRight(line, "\r\n \t")
		d, rest := 0, line
		for d < 100 {
			t := strings.TrimLeft(rest, " \t")
			if !strings.HasPrefix(t, ">") {
				break
			}
			d++
			rest = t[1:]
		}
		if d > 0 {
			rest = strings.TrimPrefix(rest, " ")
		}
		out = append(out, fwdLine{depth: d, raw: rest, text: strings.TrimSpace(normSpace(rest))})
	}
	return out
}

// fwdBlock is a header block found in a body.
type fwdBlock struct {
	start, end   int // lines: the marker or first field, and the first line after the fields
	lastLabel    int // line of the last field
	depth        int
	kind         markerKind // mkNone: a bare block without marker
	markerLang   string
	client       string
	markerFrom   string // mutt's "----- Forwarded message from Ann <a@x> -----"
	vals         map[fwdField]string
	first        fwdField
	n            int // fields read
	sent         bool
	score        map[string]int
	lastLabelKey string
	keys         []string // the labels read, lowercased
}

// matchLabel reads "Label: value" (also "*Label:*", "De :", fullwidth
// colon) and returns the label's readings, its lowercased key and the value.
func matchLabel(text string) ([]labelHit, string, string) {
	i := strings.IndexAny(text, ":：")
	if i <= 0 || i > 40 {
		return nil, "", ""
	}
	key := strings.ToLower(strings.Join(strings.Fields(strings.Trim(text[:i], "*_ \t")), " "))
	hits := labels[key]
	if len(hits) == 0 {
		return nil, "", ""
	}
	v := text[i:]
	_, size := firstRune(v)
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v[size:]), "*"))
	return hits, key, strings.TrimSpace(v)
}

func firstRune(s string) (rune, int) {
	for _, r := range s {
		if r == '：' {
			return r, len("：")
		}
		return r, 1
	}
	return 0, 0
}

// matchMarker reads a line that introduces a forwarded or original message.
func matchMarker(text string) (kind markerKind, lang, client, from string) {
	if len(text) < 4 || len(text) > 200 {
		return mkNone, "", "", ""
	}
	if strings.Trim(text, "_") == "" && len(text) >= 10 {
		return mkSeparator, "", "outlook-web", "" // Outlook on the web, new Outlook
	}
	if strings.Trim(text, "-") == "" {
		return mkSeparator, "", "", "" // "----": an <hr> rendered, or a plain rule
	}
	lead := len(text) - len(strings.TrimLeft(text, "-"))
	trail := len(text) - len(strings.TrimRight(text, "-"))
	core := strings.TrimSpace(strings.Trim(text, "-_=* \t"))
	core = strings.TrimSpace(strings.TrimRight(core, ":："))
	low := strings.ToLower(core)
	if e, ok := markerPhrases[low]; ok {
		switch {
		case e.kind == mkApple:
			return mkApple, e.lang, "apple", ""
		case lead < 3 && trail < 3:
			return mkNone, "", "", "" // words in a sentence, not a marker
		case e.kind == mkForward && lead >= 9:
			return mkForward, e.lang, "gmail", ""
		case e.kind == mkForward && lead >= 8:
			return mkForward, e.lang, "thunderbird", ""
		case e.kind == mkForward:
			return mkForward, e.lang, "yahoo", ""
		case lead == 8:
			return mkOriginal, e.lang, "thunderbird", ""
		}
		return mkOriginal, e.lang, "outlook", ""
	}
	if lead >= 3 && strings.HasPrefix(low, "forwarded message from ") {
		return mkForward, "en", "generic", core[len("forwarded message from "):]
	}
	if lead >= 3 && trail >= 3 && core != "" && len(core) < 60 && !strings.HasPrefix(low, "end ") {
		return mkSeparator, "", "outlook", ""
	}
	return mkNone, "", "", ""
}

// parseBlock reads the fields of a header block starting at line j.
func parseBlock(lines []fwdLine, j, depth int) fwdBlock {
	b := fwdBlock{start: j, vals: map[fwdField]string{}, score: map[string]int{}, depth: depth}
	last := fNone
	k := j
	for k < len(lines) && k < j+60 {
		l := lines[k]
		if l.text == "" {
			// HTML rendered with a <div> per field has blank lines between fields.
			m := k + 1
			for m < len(lines) && m < k+4 && lines[m].text == "" {
				m++
			}
			if b.n > 0 && m < len(lines) && m < k+4 && lines[m].depth == depth {
				if hits, _, _ := matchLabel(lines[m].text); hits != nil && hits[0].field != fOther {
					if _, seen := b.vals[hits[0].field]; !seen {
						k = m
						continue
					}
				}
			}
			break
		}
		if l.depth != depth {
			break
		}
		hits, key, v := matchLabel(l.text)
		if hits != nil {
			f := hits[0].field
			if f == fOther {
				if b.n == 0 {
					break
				}
				k++
				continue
			}
			if _, seen := b.vals[f]; seen {
				break
			}
			if b.n == 0 {
				b.first = f
			}
			b.vals[f], last = v, f
			b.n++
			b.lastLabel, b.lastLabelKey = k, key
			b.keys = append(b.keys, key)
			for _, h := range hits {
				b.score[h.lang]++
				b.sent = b.sent || h.sent
			}
			k++
			continue
		}
		if b.n > 0 && (last == fTo || last == fCc || last == fBcc) && strings.Contains(l.text, "@") {
			b.vals[last] += ", " + l.text // a wrapped address list
			k++
			continue
		}
		break
	}
	b.end = k
	return b
}

// valid says whether a block has enough fields for its kind.
func (b *fwdBlock) valid() bool {
	from := b.vals[fFrom] != "" || b.markerFrom != ""
	_, date := b.vals[fDate]
	_, subject := b.vals[fSubject]
	_, to := b.vals[fTo]
	switch b.kind {
	case mkForward, mkApple:
		return from && b.n >= 2 && (date || subject || to)
	case mkOriginal, mkSeparator:
		return from && b.n >= 3 && (date || subject)
	}
	return from && b.first == fFrom && b.n >= 3 && date && subject
}

// findBlock finds the first (outermost) header block in lines.
func findBlock(lines []fwdLine) (fwdBlock, bool) {
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l.text == "" {
			continue
		}
		if kind, lang, client, from := matchMarker(l.text); kind != mkNone {
			j := i + 1
			for j < len(lines) && j < i+4 && lines[j].text == "" {
				j++
			}
			if j >= len(lines) {
				continue
			}
			b := parseBlock(lines, j, lines[j].depth)
			b.start, b.kind, b.markerLang, b.client, b.markerFrom = i, kind, lang, client, from
			if b.valid() {
				return b, true
			}
			continue
		}
		if hits, _, _ := matchLabel(l.text); hits != nil && hits[0].field == fFrom {
			b := parseBlock(lines, i, l.depth)
			if b.valid() {
				return b, true
			}
		}
	}
	return fwdBlock{}, false
}

// quotedReply says whether the block sits in ">" quoting under a reply's
// attribution line ("On ... Ann wrote:").
func quotedReply(lines []fwdLine, b fwdBlock) bool {
	if b.depth == 0 {
		return false
	}
	for k := b.start - 1; k >= 0 && k >= b.start-200; k-- {
		l := lines[k]
		if l.depth >= b.depth || l.text == "" {
			continue
		}
		low := strings.ToLower(l.text)
		for _, v := range wroteVerbs {
			if strings.Contains(low, v) {
				return true
			}
		}
		return strings.HasSuffix(low, ":") && strings.Contains(low, "@")
	}
	return false
}

// findInline returns the inline forwards of a body, outermost first,
// searching the HTML (rendered to lines) before the text.
func findInline(text, htmlSrc, subject string, loc *time.Location, depth int) []Forward {
	if depth > maxForwardDepth {
		return nil
	}
	// The cheap look first: most mail holds no block and no forward prefix.
	wrote := hasForwardPrefix(subject)
	if !wrote && !mayHoldForward(text) {
		text = ""
	}
	if !wrote && !mayHoldForward(htmlSrc) {
		htmlSrc = ""
	}
	if text == "" && htmlSrc == "" {
		return nil
	}
	text, htmlSrc = strings.ToValidUTF8(text, "\uFFFD"), strings.ToValidUTF8(htmlSrc, "\uFFFD")
	if strings.TrimSpace(htmlSrc) != "" {
		if fs := findInlineLevel(HTMLToText(htmlSrc), htmlSrc, subject, loc, depth); len(fs) > 0 {
			// The text alternative, when it has the same forwards, has the
			// original's text as written rather than rendered.
			if ts := findInlineLevel(text, "", subject, loc, depth); len(ts) == len(fs) {
				for i := range fs {
					if ts[i].From.Address == fs[i].From.Address && ts[i].Subject == fs[i].Subject {
						fs[i].Text = ts[i].Text
					}
				}
			}
			return fs
		}
	}
	return findInlineLevel(text, "", subject, loc, depth)
}

func findInlineLevel(text, htmlSrc, subject string, loc *time.Location, depth int) []Forward {
	lines := splitOneLine(toLines(text))
	b, ok := findBlock(lines)
	above := lines
	if ok {
		above = lines[:b.start]
	}
	if f, found := findWrote(above, htmlSrc, subject, loc, depth); found {
		return append([]Forward{f}, findInline(f.Text, f.HTML, f.Subject, innerLoc(f, loc), depth+1)...)
	}
	if !ok {
		return nil
	}
	lang := b.language()
	note := joinLines(lines[:b.start], 0)
	sk := classifySubject(subject, lang)
	switch {
	case sk == subjReply, quotedReply(lines, b):
		return nil
	case b.kind == mkForward || b.kind == mkApple:
	case sk == subjForward, sk == subjNone && note == "":
	default:
		return nil
	}
	f := Forward{Source: ForwardInlineText, Language: lang, Shape: b.shape(lines, lang), Depth: depth, Note: note, Subject: b.vals[fSubject]}
	f.Client = b.client
	if htmlSrc != "" {
		f.Source = ForwardInlineHTML
		switch {
		case strings.Contains(htmlSrc, "divRplyFwdMsg"):
			if f.Client == "" || f.Client == "outlook" {
				f.Client = "outlook-web"
			}
		case strings.Contains(htmlSrc, "yahoo_quoted") && f.Client == "":
			f.Client = "yahoo"
		}
	}
	if f.Client == "" {
		f.Client = "generic"
		if b.sent && (b.kind == mkNone || b.kind == mkSeparator) {
			f.Client = "outlook"
		}
	}
	from := b.vals[fFrom]
	if from == "" {
		from = b.markerFrom
	}
	if list := fwdAddresses(from); len(list) > 0 {
		f.From = list[0]
	}
	f.To = fwdAddresses(b.vals[fTo])
	f.Cc = fwdAddresses(b.vals[fCc])
	f.DateText = b.vals[fDate]
	f.Date, f.DateZoneAssumed, _ = parseFwdDate(f.DateText, lang, loc)
	f.Text = bodyAfter(lines, b)
	if htmlSrc != "" {
		f.HTML = htmlAfterBlock(htmlSrc, lines, b)
	}
	return append([]Forward{f}, findInline(f.Text, f.HTML, f.Subject, innerLoc(f, loc), depth+1)...)
}

// innerLoc is the zone for dates without one inside a forward: the
// original's own.
func innerLoc(f Forward, loc *time.Location) *time.Location {
	if !f.Date.IsZero() {
		return f.Date.Location()
	}
	return loc
}

// bodyAfter is the forwarded text: the lines after the block, at its quote
// depth or deeper (re-quoted relative to it), up to a line of lower depth
// or mutt's end marker.
func bodyAfter(lines []fwdLine, b fwdBlock) string {
	end := b.end
	for end < len(lines) {
		l := lines[end]
		if l.text != "" && l.depth < b.depth {
			break
		}
		if l.depth == b.depth && strings.HasPrefix(l.text, "---") && strings.Contains(strings.ToLower(l.text), "end forwarded message") {
			break
		}
		end++
	}
	return joinLines(lines[b.end:end], b.depth)
}

// joinLines rebuilds text from lines, quoting lines deeper than depth.
func joinLines(lines []fwdLine, depth int) string {
	var sb strings.Builder
	for _, l := range lines {
		if d := l.depth - depth; d > 0 {
			sb.WriteString(strings.Repeat("> ", d))
		}
		sb.WriteString(l.raw)
		sb.WriteByte('\n')
	}
	return strings.Trim(sb.String(), "\n \t")
}
