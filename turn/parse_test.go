package turn

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseServersGood(t *testing.T) {
	udpTCP := []Transport{TransportUDP, TransportTCP}
	tests := []struct {
		name string
		in   string
		want []ServerConfig
	}{
		{"empty", "", nil},
		{"blank", "  ; ;", nil},
		{"documented example",
			"id=a,host=10.0.0.1,port=3478,tls_port=5349,realm=caas.local,secret=s1,transports=udp|tcp;" +
				"id=b,host=turn.example.com,port=3479,realm=other,secret=s2,previous_secret=s0,transports=udp|tcp|tls,tls_port=443",
			[]ServerConfig{
				{ID: "a", Host: "10.0.0.1", Port: 3478, TLSPort: 5349, Realm: "caas.local", Secret: "s1", Transports: udpTCP},
				{ID: "b", Host: "turn.example.com", Port: 3479, TLSPort: 443, Realm: "other", Secret: "s2", PreviousSecret: "s0",
					Transports: []Transport{TransportUDP, TransportTCP, TransportTLS}},
			}},
		{"defaults", "id=x,host=turn.example.com,secret=s",
			[]ServerConfig{{ID: "x", Host: "turn.example.com", Port: 3478, Realm: "caas.local", Secret: "s", Transports: udpTCP}}},
		{"blanks, case and trailing separators", " ID = x , Host= 10.0.0.2 ,secret = s ,transports= TCP | udp ,; ",
			[]ServerConfig{{ID: "x", Host: "10.0.0.2", Port: 3478, Realm: "caas.local", Secret: "s",
				Transports: []Transport{TransportTCP, TransportUDP}}}},
		{"secret containing =", "id=x,host=h,secret=a=b==",
			[]ServerConfig{{ID: "x", Host: "h", Port: 3478, Realm: "caas.local", Secret: "a=b==", Transports: udpTCP}}},
		{"ipv6 host", "id=v6,host=::1,port=3478,secret=s,transports=udp",
			[]ServerConfig{{ID: "v6", Host: "::1", Port: 3478, Realm: "caas.local", Secret: "s", Transports: []Transport{TransportUDP}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServers(tt.in)
			if err != nil {
				t.Fatalf("ParseServers: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseServers =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseServersBad(t *testing.T) {
	const secret = "TopSecretValue"
	tests := []struct {
		name      string
		in        string
		field     string
		entry     int
		reasonHas string
	}{
		{"missing id", "host=h,secret=" + secret, "id", 1, "missing"},
		{"missing host", "id=a,secret=" + secret, "host", 1, "missing"},
		{"missing secret", "id=a,host=h", "secret", 1, "missing"},
		{"empty secret", "id=a,host=h,secret=", "secret", 1, "empty"},
		{"port not a number", "id=a,host=h,secret=" + secret + ",port=abc", "port", 1, "not a number"},
		{"port out of range", "id=a,host=h,secret=" + secret + ",port=70000", "port", 1, "1-65535"},
		{"port zero", "id=a,host=h,secret=" + secret + ",port=0", "port", 1, "1-65535"},
		{"tls_port negative", "id=a,host=h,secret=" + secret + ",tls_port=-1", "tls_port", 1, "0 (none)"},
		{"unknown transport", "id=a,host=h,secret=" + secret + ",transports=udp|quic", "transports", 1, "quic"},
		{"transport twice", "id=a,host=h,secret=" + secret + ",transports=udp|udp", "transports", 1, "twice"},
		{"empty transports", "id=a,host=h,secret=" + secret + ",transports=", "transports", 1, "empty"},
		{"tls without tls_port", "id=a,host=h,secret=" + secret + ",transports=tls", "tls_port", 1, "required"},
		{"unknown key", "id=a,host=h,secret=" + secret + ",colour=blue", "colour", 1, "unknown field"},
		{"key twice", "id=a,id=b,host=h,secret=" + secret, "id", 1, "twice"},
		{"bad id", "id=a b,host=h,secret=" + secret, "id", 1, "invalid character"},
		{"bad host", "id=a,host=not a host,secret=" + secret, "host", 1, "not an IP address"},
		{"host with port", "id=a,host=h:3478,secret=" + secret, "host", 1, "not an IP address"},
		{"realm too long", "id=a,host=h,secret=" + secret + ",realm=" + strings.Repeat("r", 200), "realm", 1, "127"},
		{"second entry bad", "id=a,host=h,secret=" + secret + ";id=b,host=h,port=x,secret=" + secret, "port", 2, "not a number"},
		{"duplicate id", "id=a,host=h,secret=" + secret + ";id=a,host=h2,secret=" + secret, "id", 2, "duplicate"},
		{"item without =", "id=a,host=h," + secret, "", 1, "not key=value"},
		{"only a secret", secret, "", 1, "not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServers(tt.in)
			if err == nil {
				t.Fatalf("ParseServers succeeded: %+v", got)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v (%T) is not a *FieldError wrapping ErrInvalidConfig", err, err)
			}
			if fe.Field != tt.field || fe.Entry != tt.entry || !strings.Contains(fe.Reason, tt.reasonHas) {
				t.Fatalf("error %q: field %q entry %d reason %q; want field %q entry %d reason containing %q",
					err, fe.Field, fe.Entry, fe.Reason, tt.field, tt.entry, tt.reasonHas)
			}
			if tt.field != "" && !strings.Contains(err.Error(), `field "`+tt.field+`"`) {
				t.Fatalf("error %q does not name field %q", err, tt.field)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
	if _, err := ParseServers("id=a,host=h,secret=s;id=a,host=h,secret=s"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate id error %v does not match ErrExists", err)
	}
}

func TestLegacyServer(t *testing.T) {
	c, err := LegacyServer("turn.example.com", 0, "s")
	if err != nil {
		t.Fatal(err)
	}
	want := ServerConfig{ID: "default", Host: "turn.example.com", Port: 3478, Realm: "caas.local", Secret: "s",
		Transports: []Transport{TransportUDP, TransportTCP}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("LegacyServer = %#v, want %#v", c, want)
	}
	if got := c.TURNURLs(); !reflect.DeepEqual(got, []string{
		"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp"}) {
		t.Fatalf("TURNURLs = %v", got)
	}
	for _, tt := range []struct {
		host, secret string
		port         int
		field        string
	}{
		{"", "s", 3478, "host"},
		{"h", "", 3478, "secret"},
		{"h", "s", 70000, "port"},
	} {
		var fe *FieldError
		if _, err := LegacyServer(tt.host, tt.port, tt.secret); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("LegacyServer(%q, %d, %q) error %v, want field %q", tt.host, tt.port, tt.secret, err, tt.field)
		}
	}
}

func TestServerURLs(t *testing.T) {
	c := ServerConfig{ID: "x", Host: "::1", Port: 3478, TLSPort: 5349, Secret: "s",
		Transports: []Transport{TransportTLS, TransportUDP, TransportTCP}}
	if got := c.STUNURL(); got != "stun:[::1]:3478" {
		t.Errorf("STUNURL = %q", got)
	}
	want := []string{"turns:[::1]:5349?transport=tcp", "turn:[::1]:3478?transport=udp", "turn:[::1]:3478?transport=tcp"}
	if got := c.TURNURLs(); !reflect.DeepEqual(got, want) {
		t.Errorf("TURNURLs = %v, want %v", got, want)
	}
	c.Transports = []Transport{TransportUDP} // tls_port without tls transport: no turns URL
	if got := c.TURNURLs(); !reflect.DeepEqual(got, []string{"turn:[::1]:3478?transport=udp"}) {
		t.Errorf("TURNURLs = %v", got)
	}
}
