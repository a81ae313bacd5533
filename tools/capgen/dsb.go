package main

import (
	"encoding/binary"
	"io"
)

// pcapng Decryption Secrets Block: block type 0x0000000A, and the secrets
// type of an NSS key log, "TLSK" (pcapng specification, section 4.7).
const (
	ngBlockDSB     = 0x0000000a
	secretsTLSKLog = 0x544c534b
)

// appendDSB appends to b a pcapng Decryption Secrets Block holding data
// as secrets of type typ, little-endian as capgen's sections are (pcapgo
// writes them so), the data padded with zeros to 32 bits and no options:
//
//	block type | block total length | secrets type | secrets length |
//	secrets data, padded | block total length
func appendDSB(b []byte, typ uint32, data []byte) []byte {
	pad := (4 - len(data)%4) % 4
	total := uint32(4 + 4 + 4 + 4 + len(data) + pad + 4)
	le := binary.LittleEndian
	b = le.AppendUint32(b, ngBlockDSB)
	b = le.AppendUint32(b, total)
	b = le.AppendUint32(b, typ)
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	b = append(b, make([]byte, pad)...)
	return le.AppendUint32(b, total)
}

// writeNg writes pkts as a pcapng file to w: capgen's section and
// interface, then, if keys is not nil, a Decryption Secrets Block with
// that key log before the first packet, then the packets.
func writeNg(w io.Writer, comment string, keys []byte, pkts []packet) error {
	ng, err := newNgWriter(w, comment)
	if err != nil {
		return err
	}
	if keys != nil {
		// The section header and interface block are buffered in ng.
		if err := ng.Flush(); err != nil {
			return err
		}
		if _, err := w.Write(appendDSB(nil, secretsTLSKLog, keys)); err != nil {
			return err
		}
	}
	for _, p := range pkts {
		if err := ng.WritePacket(capInfo(p), p.data); err != nil {
			return err
		}
	}
	return ng.Flush()
}
