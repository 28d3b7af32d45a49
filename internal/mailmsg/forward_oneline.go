package mailmsg

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Shape 2 (ShapeOneLine): Yahoo Mail's text alternative runs the header
// block's fields together on one line, the marker sometimes in front:
//
//	----- Forwarded Message ----- From: Ann <a@x>To: b@x <b@x>Sent: Monday, ...Subject: Printer broken
//
// splitOneLine rewrites such a line as the lines the block would have had,
// so the rest of forward detection reads it like any other block. A field
// starts where a known label, capitalised as clients write it, follows a
// character that is not a letter; the first field must be From (in some
// language) and the split stops after the subject, which runs to the end
// of the line. A label right after a lower-case letter is not seen: the
// value before it is then the worse for it, not the block.

// maxOneLineFields bounds the fields read from one line.
const maxOneLineFields = 12

// splitOneLine returns lines with every one-line header block split into
// a marker line and a line per field (marked split). It returns lines
// itself, unchanged, when there is none: the cheap checks (a line of at
// least 40 bytes with three colons) reject ordinary lines.
func splitOneLine(lines []fwdLine) []fwdLine {
	var out []fwdLine
	for i, l := range lines {
		parts := oneLineParts(l.text)
		if parts == nil {
			if out != nil {
				out = append(out, l)
			}
			continue
		}
		if out == nil {
			out = append(make([]fwdLine, 0, len(lines)+len(parts)), lines[:i]...)
		}
		for _, p := range parts {
			out = append(out, fwdLine{depth: l.depth, raw: p, text: p, split: true})
		}
	}
	if out == nil {
		return lines
	}
	return out
}

// oneLineParts splits a one-line block: the marker (if any) and the
// fields, nil when text is not one.
func oneLineParts(text string) []string {
	if len(text) < 40 || strings.Count(text, ":")+strings.Count(text, "：") < 3 {
		return nil
	}
	var parts []string
	rest := text
	if strings.HasPrefix(text, "---") {
		core := strings.TrimLeft(text, "-")
		end := strings.Index(core, "---")
		if end < 0 {
			return nil
		}
		phrase := strings.ToLower(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(core[:end]), ":")))
		if e, ok := markerPhrases[phrase]; !ok || e.kind != mkForward && e.kind != mkOriginal {
			return nil
		}
		after := strings.TrimLeft(core[end:], "-")
		parts = append(parts, strings.TrimSpace(text[:len(text)-len(after)]))
		rest = strings.TrimSpace(after)
	}
	starts := fieldStarts(rest)
	if len(starts) < 3 {
		return nil
	}
	for k, s := range starts {
		e := len(rest)
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		parts = append(parts, strings.TrimSpace(rest[s:e]))
	}
	return parts
}

// fieldStarts returns where the fields of a one-line block start in s: at
// 0 with a From label, then at each known label after a non-letter, up to
// the subject's.
func fieldStarts(s string) []int {
	hits, _, _ := matchLabel(s)
	if hits == nil || hits[0].field != fFrom {
		return nil
	}
	starts := []int{0}
	seen := map[fwdField]bool{fFrom: true}
	prev := rune(' ')
	for i, r := range s {
		// After a non-letter or a capital: "GMT+1Subject:", "CETTemat:".
		if i > 0 && unicode.IsUpper(r) && !unicode.IsLower(prev) {
			if f := labelAt(s[i:]); f != fNone && !seen[f] {
				starts = append(starts, i)
				seen[f] = true
				if f == fSubject || len(starts) >= maxOneLineFields {
					break
				}
			}
		}
		prev = r
	}
	return starts
}

// labelAt reads a label at the start of s ("To:", "De :", "件名："), fNone
// if there is none.
func labelAt(s string) fwdField {
	i := strings.IndexAny(s[:min(len(s), 48)], ":：") // bounded: called at every capital of a line
	if i <= 0 || i > 40 || !utf8.ValidString(s[:i]) {
		return fNone
	}
	hits := labels[strings.ToLower(strings.TrimSpace(s[:i]))]
	if len(hits) == 0 {
		return fNone
	}
	return hits[0].field
}
