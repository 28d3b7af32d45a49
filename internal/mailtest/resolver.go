package mailtest

import (
	"context"
	"encoding/binary"
	"io"
	"net"
)

// NoSuchHost returns a resolver that answers every DNS question "no such
// host" (NXDOMAIN) itself, without leaving the machine: tests of a
// made-up host name (smtp.example.invalid) send no query to the network's
// DNS server. Names in /etc/hosts (localhost) still resolve.
func NoSuchHost() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go answerNXDomain(server)
		return client, nil
	}}
}

// answerNXDomain answers the DNS queries written to c (framed as over TCP:
// a 2-byte length, RFC 1035 4.2.2) with NXDOMAIN until c is closed.
func answerNXDomain(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		// The question: its name's labels up to the root, then type and class.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5
		if end > len(q) {
			return
		}
		a := make([]byte, 2, 2+end)
		binary.BigEndian.PutUint16(a, uint16(end))
		a = append(a, q[0], q[1], 0x81|q[2]&0x01, 0x83, 0, 1, 0, 0, 0, 0, 0, 0) // ID; QR RD, RA NXDOMAIN; one question
		a = append(a, q[12:end]...)
		if _, err := c.Write(a); err != nil {
			return
		}
	}
}
