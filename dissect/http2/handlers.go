package http2

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/h2scope/h2scope/dissect/event"
)

// The finish functions below complete one frame type each: they read the
// payload bytes kept (h.keep[:h.keepN]), update the connection's state and
// emit the frame's event, prepared by endFrame with c.ev.Ref the packet
// that completed the frame. A frame whose payload was partly lost
// (h.lost > 0) or has an illegal length is emitted without the detail it
// would have carried.

// intact reports whether the kept payload is the whole, legal payload.
func (h *half) intact() bool {
	return h.lost == 0 && h.spec.lengthOK(h.fh.Type, h.fh.Flags, h.fh.Length) && h.keepN == int(h.fh.Length)
}

func (c *Conn) finishData(h *half) {
	fh := &h.fh
	at := c.ev.Ref
	end := fh.Flags.Has(FlagEndStream)
	if fh.Flags.Has(FlagPadded) {
		c.det.Padding = h.pad
	}
	if fh.StreamID == 0 {
		c.emit(h)
		return
	}
	if c.obs != nil && end && !h.endSent {
		c.obs.Data(h.dir, fh.StreamID, nil, true, at)
	}
	st := c.touch(fh.StreamID, at, false)
	r := c.recFor(fh.StreamID, st)
	switch {
	case st != nil && st.end[h.dir] || st == nil && r != nil && r.ended[h.dir]:
		c.anomaly("data_after_end_stream")
	case st == nil && r == nil && c.pristine && !c.untracked:
		// Never opened (or implicitly closed by a higher id). DATA after
		// the peer's RST_STREAM is not counted: it may have been in
		// flight.
		c.anomaly("data_on_closed_stream")
	}
	c.consume(h.dir, st, int64(fh.Length), end, at)
	if r != nil {
		r.dataBytes.Add(h.dir, uint64(h.dataBytes))
		r.dataFrames.Add(h.dir, 1)
	}
	c.emit(h)
	if end {
		c.endStream(h.dir, st, at)
	}
}

func (c *Conn) finishHeaders(h *half) {
	fh := &h.fh
	at := c.ev.Ref
	if fh.Type != FrameContinuation && fh.Flags.Has(FlagPadded) {
		c.det.Padding = h.pad
	}
	if h.pfxN < h.pfxWant && !h.discard {
		h.blk.lost = true // too short for its own prefix
	}
	if fh.Type == FramePushPromise {
		c.det.PromisedStream = h.blk.promised
	}
	if fh.Type == FrameHeaders && fh.StreamID != 0 {
		st := c.touch(fh.StreamID, at, h.dir == initiator(fh.StreamID))
		if r := c.recFor(fh.StreamID, st); r != nil {
			if !r.hasFirst {
				r.first, r.hasFirst = at, true
			}
			if h.dir != initiator(fh.StreamID) && r.reply == (event.Ref{}) {
				r.reply = at
			}
		}
	}
	if h.discard || !h.blk.active || !fh.Flags.Has(FlagEndHeaders) {
		c.emit(h)
		return
	}
	c.endBlock(h, at)
}

// endBlock decodes a complete header block and emits the frame that ended
// it with the fields.
func (c *Conn) endBlock(h *half, at event.Ref) {
	b := &h.blk
	b.active = false
	c.blocks++
	bad := b.lost || b.over
	if b.over {
		c.anomaly("header_block_too_large")
	}
	var fields []event.Header
	if !bad {
		var st blockStats
		var err error
		fields, st, err = h.hp.decode(b.buf, c.hdrs[:0], c.opts.MaxHeaderList)
		c.hdrs = fields[:0]
		if err != nil {
			c.anomaly("hpack_error")
			bad = true
		} else {
			c.fields += st.fields
			c.decoded += st.decoded
			if st.truncated {
				c.anomaly(AnomalyHeaderListTooLarge)
			}
			// Over the limit the receiver advertised, from a block a
			// sixteenth of the size or less: an HPACK bomb's shape
			// (small references to big table entries), not a large
			// cookie.
			if lim := c.peer[h.dir.Reverse()].maxHeaderList; lim > 0 && st.size > int(lim) && st.size >= 16*len(b.buf) {
				c.anomaly(AnomalyHeaderListAmplified)
			}
		}
	}
	if bad {
		h.hp.forget()
		c.undecodable++
		fields = nil
		c.det.HeadersUndecodable = true
	} else {
		c.det.Headers = fields
	}
	if cap(b.buf) > keepCap {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	switch {
	case b.typ == FramePushPromise:
		c.promise(h.dir, b.stream, b.promised, fields, bad, at)
	case b.stream != 0:
		c.headersBlock(h.dir, b.stream, fields, bad, b.endStream, at)
	}
	c.emit(h)
	if b.typ == FrameHeaders && b.stream != 0 && c.obs != nil {
		c.obs.Headers(h.dir, b.stream, fields, b.endStream, at)
	}
}

func (c *Conn) finishPriority(h *half) {
	if h.intact() && binary.BigEndian.Uint32(h.keep[:4])&(1<<31-1) == h.fh.StreamID && h.fh.StreamID != 0 {
		c.anomaly("priority_self_dependency")
	}
	c.emit(h)
}

func (c *Conn) finishRSTStream(h *half) {
	at := c.ev.Ref
	if !h.intact() {
		c.emit(h)
		return
	}
	code := ErrCode(binary.BigEndian.Uint32(h.keep[:4]))
	c.ev.Code, c.ev.HasCode, c.ev.Error = uint32(code), true, code.String()
	id := h.fh.StreamID
	if id == 0 {
		c.emit(h)
		return
	}
	st := c.touch(id, at, false)
	if r := c.recFor(id, st); r != nil && r.reset == nil {
		r.reset = &Reset{Dir: h.dir, Code: code, Ref: at}
	}
	if st != nil {
		c.resets[h.dir]++
		c.closeStream(st, at, StallRSTStream)
	}
	c.emit(h)
	if c.obs != nil {
		c.obs.Reset(h.dir, id, code, at)
	}
}

func (c *Conn) finishSettings(h *half) {
	at := c.ev.Ref
	if h.lost > 0 {
		c.settingsLost(h.dir, at)
		c.emit(h)
		return
	}
	if h.fh.Flags.Has(FlagAck) {
		c.settingsAck(h.dir)
		c.emit(h)
		return
	}
	if h.fh.Length%6 != 0 || h.fh.StreamID != 0 {
		c.emit(h)
		return
	}
	if h.fh.Length > maxSettingsBytes {
		c.anomaly("settings_too_many")
	}
	n := h.keepN / 6
	set := make([]event.Setting, 0, n)
	for i := 0; i < n; i++ {
		p := h.keep[i*6:]
		id := SettingID(binary.BigEndian.Uint16(p))
		v := binary.BigEndian.Uint32(p[2:])
		set = append(set, event.Setting{ID: id.String(), Value: v})
		c.applySetting(h.dir, id, v, at)
	}
	c.det.Settings = set
	c.emit(h)
}

func (c *Conn) finishPing(h *half) {
	if h.intact() {
		c.det.PingData = hex.EncodeToString(h.keep[:8])
	}
	c.emit(h)
}

func (c *Conn) finishGoAway(h *half) {
	if h.lost > 0 || h.keepN < 8 || h.fh.StreamID != 0 {
		c.emit(h)
		return
	}
	last := binary.BigEndian.Uint32(h.keep[:4]) & (1<<31 - 1)
	code := ErrCode(binary.BigEndian.Uint32(h.keep[4:8]))
	debug := string(h.keep[8:h.keepN])
	c.ev.Code, c.ev.HasCode, c.ev.Error = uint32(code), true, code.String()
	c.det.LastStreamID = last
	c.det.Debug = debug
	if len(c.goaways) < maxGoAways {
		c.goaways = append(c.goaways, GoAway{Dir: h.dir, LastStreamID: last, Code: code, Debug: debug, Ref: c.ev.Ref})
	}
	c.emit(h)
}

func (c *Conn) finishWindowUpdate(h *half) {
	at := c.ev.Ref
	id := h.fh.StreamID
	target := h.dir.Reverse()
	if h.lost > 0 {
		// Which window grew, and by how much, is lost.
		if id == 0 {
			c.send[target].known = false
			c.closeConnStall(target, at, StallCaptureGap)
			c.settleConnGuess(target, at, StallCaptureGap)
		} else if st := c.active[id]; st != nil {
			st.winKnown[target] = false
			c.closeStall(target, st, at, StallCaptureGap)
			c.settleGuess(target, st, at, StallCaptureGap)
		}
		c.emit(h)
		return
	}
	if !h.intact() {
		c.emit(h)
		return
	}
	inc := binary.BigEndian.Uint32(h.keep[:4]) & (1<<31 - 1)
	c.det.WindowIncrement = inc
	if inc == 0 {
		c.anomaly("window_update_zero")
	}
	if id == 0 {
		if s := &c.send[target]; !s.known {
			s.guess.grow(int64(inc), at, StallWindowUpdate)
			c.noteGrow(target, 0, int64(inc), at)
		} else if c.grow(&s.win, &s.stall, int64(inc)) {
			c.closeConnStall(target, at, StallWindowUpdate)
		}
	} else if st := c.touch(id, at, false); st != nil {
		switch {
		case st.winKnown[target]:
			if c.grow(&st.win[target], &st.stall[target], int64(inc)) {
				c.closeStall(target, st, at, StallWindowUpdate)
			}
		case !st.end[target]:
			st.guess[target].grow(int64(inc), at, StallWindowUpdate)
			c.noteGrow(target, id, int64(inc), at)
		}
	}
	c.emit(h)
}

func (c *Conn) finishPriorityUpdate(h *half) { c.emit(h) }

func (c *Conn) finishUnknown(h *half) { c.emit(h) }
