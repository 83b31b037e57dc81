package socketio

import (
	"encoding/json"
	"fmt"

	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/transport"
)

// receive handles the client's packets in order. An error is an
// Engine.IO protocol violation: the caller closes the session.
func (s *session) receive(pkts []eioPacket) error {
	var err error
	s.evMu.Lock()
	for _, p := range pkts {
		if s.ended || s.closing.Load() {
			break
		}
		if err = s.handle(p); err != nil {
			break
		}
	}
	s.evMu.Unlock()
	if s.closing.Load() {
		s.tryEnd()
	}
	return err
}

// handle handles one Engine.IO packet; evMu is held.
func (s *session) handle(p eioPacket) error {
	switch p.Type {
	case eioMessage:
		if p.Binary {
			s.binary()
		} else {
			s.message(p.Data)
		}
	case eioPong:
		s.pong()
	case eioPing:
		s.pushRaw(append([]byte{eioPong}, p.Data...))
	case eioClose:
		s.close(transport.CloseNormal, "client closed", byClient)
	case eioNoop:
	default:
		return fmt.Errorf("%w: unexpected engine.io packet type %q", ErrMalformedPacket, p.Type)
	}
	return nil
}

// binary refuses a binary message, except the attachments of a binary
// packet already refused.
func (s *session) binary() {
	if s.skipBinary > 0 {
		s.skipBinary--
		return
	}
	s.refuse(-1, wire.CodeInvalidMessage, ErrBinaryNotSupported.Error()+": send JSON text")
}

// message handles one Socket.IO packet; evMu is held.
func (s *session) message(data []byte) {
	if len(data) > s.srv.cfg.MaxFrameBytes {
		s.refuse(-1, wire.CodeTooLarge, fmt.Sprintf("packet of %d bytes exceeds the limit of %d", len(data), s.srv.cfg.MaxFrameBytes))
		return
	}
	p, err := decodeSIOPacket(data)
	if err != nil {
		s.refuse(-1, wire.CodeInvalidMessage, err.Error())
		return
	}
	if p.Namespace != defaultNS {
		if p.Type == sioConnect {
			s.pushRaw(encodeConnectError(p.Namespace, wire.CodeForbidden,
				fmt.Sprintf("Invalid namespace %q: caasd serves only the default namespace /", p.Namespace)))
		}
		return // packets of namespaces the client is not connected to are dropped
	}
	switch p.Type {
	case sioConnect:
		s.connect(p.Data)
	case sioDisconnect:
		s.close(transport.CloseNormal, "client disconnected", byClient)
	case sioEvent:
		if s.tsess == nil {
			s.srv.logger.Debug("socket.io event before CONNECT", "sid", s.sid)
			s.close(transport.ClosePolicy, "event before CONNECT", byServer)
			return
		}
		ack := uint64(0)
		if p.ID >= 0 {
			ack = uint64(p.ID) + 1
		}
		s.tsess.Event(p.Name, p.Arg, ack)
	case sioAck:
		// caasd asks clients for no acknowledgement.
	case sioBinaryEvent, sioBinaryAck:
		s.skipBinary = min(s.skipBinary+p.Attachments, maxAttachments)
		s.refuse(p.ID, wire.CodeInvalidMessage, fmt.Sprintf("%s: event %q has binary attachments; send JSON", ErrBinaryNotSupported, p.Name))
	case sioConnectError:
		s.refuse(-1, wire.CodeInvalidMessage, "CONNECT_ERROR is a server packet")
	}
}

// refuse answers a packet caasd does not handle: before CONNECT with a
// CONNECT_ERROR, after it with an "error" event (and the ack, if id ≥ 0).
func (s *session) refuse(id int64, code wire.Code, msg string) {
	if s.tsess == nil {
		s.pushRaw(encodeConnectError(defaultNS, code, msg))
		return
	}
	f := transport.NewFrame(wire.EvError, wire.Marshal(wire.Error{Code: code, Message: msg}))
	if id >= 0 {
		s.Reply(uint64(id)+1, f)
		return
	}
	s.Send(f)
}

// connect handles CONNECT {token}: it verifies the token, answers, and
// opens the connection with the handler.
func (s *session) connect(data []byte) {
	if s.tsess != nil {
		s.refuse(-1, wire.CodeInvalidMessage, "already connected to /")
		return
	}
	token := s.token
	if len(data) > 0 {
		var a struct {
			Token json.RawMessage `json:"token"`
		}
		var t string
		if err := json.Unmarshal(data, &a); err != nil {
			s.pushRaw(encodeConnectError(defaultNS, wire.CodeInvalidMessage, "malformed auth: "+err.Error()))
			return
		}
		if len(a.Token) > 0 && string(a.Token) != "null" {
			if err := json.Unmarshal(a.Token, &t); err != nil {
				s.pushRaw(encodeConnectError(defaultNS, wire.CodeInvalidMessage, "auth.token must be a string"))
				return
			}
			token = t
		}
	}
	p, err := s.srv.verifier.Verify(token)
	if err != nil {
		s.failedConnects++
		s.pushRaw(encodeConnectError(defaultNS, wire.CodeUnauthorized, err.Error()))
		if s.failedConnects >= maxFailedConnects {
			s.close(transport.ClosePolicy, "too many refused CONNECTs", byServer)
		}
		return
	}
	s.principal = p
	if !s.pushRaw(encodeConnect(s.sioSID)) || !s.register() {
		return
	}
	s.tsess = s.srv.handler.Open(s)
}
