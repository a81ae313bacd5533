package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// WriteConnsJSON writes one JSON object per connection, one per line
// (NDJSON), in the order given. Timestamps are written in UTC.
func WriteConnsJSON(w io.Writer, conns []*tcp.Conn) error {
	enc := json.NewEncoder(w)
	for _, c := range conns {
		cp := *c
		cp.FirstTS, cp.LastTS = c.FirstTS.UTC(), c.LastTS.UTC()
		if err := enc.Encode(&cp); err != nil {
			return err
		}
	}
	return nil
}

// WriteConnsTable writes a terminal table with one row per connection.
func WriteConnsTable(w io.Writer, conns []*tcp.Conn) error {
	t := newTable(w)
	t.Header("ID", "Client", "Server", "First", "Dur (ms)", "Pkts c2s/s2c", "Bytes c2s/s2c",
		"State", "History", "Close", "RTT (ms)", "Retr", "ZWin", "Missed")
	for _, c := range conns {
		client := c.Client.String()
		if c.ClientGuessed {
			client += " ?"
		}
		rtt := "-"
		if c.HandshakeRTTMS != nil {
			rtt = strconv.FormatFloat(*c.HandshakeRTTMS, 'f', 3, 64)
		}
		if err := t.Append(
			strconv.Itoa(int(c.ID)), client, c.Server.String(),
			strconv.FormatUint(c.FirstFrame, 10),
			strconv.FormatFloat(c.DurationMS, 'f', 1, 64),
			fmt.Sprintf("%d/%d", c.Packets.C2S, c.Packets.S2C),
			fmt.Sprintf("%d/%d", c.Bytes.C2S, c.Bytes.S2C),
			c.ConnState, c.History, string(c.Close), rtt,
			strconv.Itoa(c.Retransmissions), strconv.Itoa(c.ZeroWindows),
			strconv.FormatUint(c.MissedBytes, 10),
		); err != nil {
			return err
		}
	}
	return t.Render()
}

// newTable returns a table writer with headers printed as given.
func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}
