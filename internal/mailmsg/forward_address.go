package mailmsg

import (
	"regexp"
	"strings"
)

var fwdMailtoBracket = regexp.MustCompile(`(?i)\[mailto:([^\]\s]+)\]`)

// fwdAddresses reads an address list written by a mail client: RFC 5322
// lists, Outlook's "Name [mailto:addr]" and "A; B", HTML renderings
// "Name <mailto:addr>", or display names alone.
func fwdAddresses(v string) []Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	v = fwdMailtoBracket.ReplaceAllString(v, "<$1>")
	v = cutOnBehalf(v)
	v = unMailto(v)
	p := &parser{msg: &Message{}}
	if list := p.parseAddressList("", v); len(list) > 0 {
		return list
	}
	var out []Address
	for _, part := range splitAddresses(v) {
		if name := cleanName(part); name != "" && len(out) < 100 {
			out = append(out, Address{Name: name})
		}
	}
	return out
}

// onBehalfPhrases are Outlook's "X on behalf of Y" in a From field, in the
// languages of forward_labels.go. X is the person who wrote; Y, a shared
// or delegated mailbox, is cut off.
var onBehalfPhrases = []string{
	" on behalf of ", " im auftrag von ", " de la part de ", " en nombre de ", " per conto di ", " namens ",
	" em nome de ", " w imieniu ", " på vegne av ", " på vegnar av ", " på uppdrag av ", " för ", " på vegne af ",
	" puolesta ", " jménem ", " v mene ", " nevében ", " în numele ", " u ime ", " от имени ", " від імені ", " adına ",
}

// cutOnBehalf removes an "on behalf of" and what follows it, when an
// address stands before it.
func cutOnBehalf(v string) string {
	if !strings.Contains(v, "@") || len(v) > 2000 {
		return v
	}
	low := strings.ToLower(v)
	for _, p := range onBehalfPhrases {
		if i := strings.Index(low, p); i > 0 && strings.Contains(v[:i], "@") {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}

// unMailto undoes Outlook.com's link decorations: "Ann<mailto:a@x>" is
// "Ann <a@x>", "<a@x<mailto:a@x>>" is "<a@x>", and an address written
// twice in a row ("Ann <a@x> <a@x>") is kept once.
func unMailto(v string) string {
	if !strings.Contains(strings.ToLower(v), "mailto:") {
		return v
	}
	var sb strings.Builder
	open := 0 // unclosed '<' before here
	for i := 0; i < len(v); {
		if v[i] == '<' && len(v)-i > 8 && strings.EqualFold(v[i+1:i+8], "mailto:") {
			end := strings.IndexByte(v[i:], '>')
			if end < 0 {
				sb.WriteString(v[i:])
				break
			}
			if open == 0 { // a name's link: the address
				sb.WriteString(" <" + v[i+8:i+end] + ">")
			} // else a link inside an address: dropped
			i += end + 1
			continue
		}
		switch v[i] {
		case '<':
			open++
		case '>':
			open = max(open-1, 0)
		}
		sb.WriteByte(v[i])
		i++
	}
	return dedupeAngles(sb.String())
}

// dedupeAngles keeps one of two equal "<addr>" that follow each other.
func dedupeAngles(v string) string {
	for range 8 {
		a := strings.IndexByte(v, '<')
		if a < 0 {
			return v
		}
		found := false
		for a >= 0 && a < len(v) {
			b := strings.IndexByte(v[a:], '>')
			if b < 0 {
				return v
			}
			first := v[a : a+b+1]
			rest := strings.TrimLeft(v[a+b+1:], " ")
			if strings.HasPrefix(strings.ToLower(rest), strings.ToLower(first)) {
				v = v[:a+b+1] + rest[len(first):]
				found = true
				break
			}
			next := strings.IndexByte(v[a+b+1:], '<')
			if next < 0 {
				break
			}
			a += b + 1 + next
		}
		if !found {
			return v
		}
	}
	return v
}
