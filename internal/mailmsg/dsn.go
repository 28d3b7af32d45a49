package mailmsg

import (
	"bufio"
	"io"
	"strings"
)

// BouncedRecipient is a recipient a delivery report says was not
// delivered to (RFC 3464 section 2.3: Action: failed).
type BouncedRecipient struct {
	Address string // normalized: Final-Recipient (or Original-Recipient when there is none)
	// Original is the Original-Recipient, normalized, when the report
	// names one ("" otherwise): the address as it was sent to, before the
	// recipient's server rewrote it (an alias).
	Original string
	// Status is the enhanced status code ("5.1.1"), Diagnostic the remote
	// server's words ("smtp; 550 5.1.1 <x@y>: Recipient address rejected").
	Status, Diagnostic string
}

// maxDSNBytes bounds how much of a delivery-status part is read.
const maxDSNBytes = 64 << 10

// deliveryStatus reads the per-recipient fields of a message/delivery-status
// part (RFC 3464 section 2): a group of per-message fields, then one group
// per recipient, separated by blank lines. It returns the failed ones.
func deliveryStatus(r io.Reader) []BouncedRecipient {
	var out []BouncedRecipient
	var group map[string]string
	var last string
	flush := func() {
		if group == nil {
			return
		}
		defer func() { group, last = nil, "" }()
		if !strings.EqualFold(strings.TrimSpace(group["action"]), "failed") {
			return
		}
		// "rfc822; jane@example.com" (the address type, then the address)
		read := func(field string) string {
			v := group[field]
			if _, a, ok := strings.Cut(v, ";"); ok {
				v = a
			}
			return NormalizeAddress(strings.Trim(strings.TrimSpace(v), "<>"))
		}
		addr, orig := read("final-recipient"), read("original-recipient")
		if addr == "" {
			addr = orig
		}
		if addr == "" {
			return
		}
		out = append(out, BouncedRecipient{Address: addr, Original: orig, Status: strings.TrimSpace(group["status"]),
			Diagnostic: strings.Join(strings.Fields(group["diagnostic-code"]), " ")})
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxDSNBytes))
	sc.Buffer(make([]byte, 0, 4096), maxDSNBytes)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case (line[0] == ' ' || line[0] == '\t') && last != "":
			group[last] += " " + strings.TrimSpace(line)
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if group == nil {
				group = map[string]string{}
			}
			last = strings.ToLower(strings.TrimSpace(name))
			if _, seen := group[last]; !seen {
				group[last] = strings.TrimSpace(value)
			}
		}
	}
	flush()
	return out
}
