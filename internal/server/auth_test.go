package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/health"
	"github.com/hybridscore/hybridscore/internal/redistest"
	srv "github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/internal/workertest"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// The worker and a producer work against nats-server under every
// authentication the configuration offers, and a worker without the
// server's credentials does not start.
func TestAuthenticationAndTLS(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	nkeyUser, _ := nkeys.CreateUser()
	nkeyPub, _ := nkeyUser.PublicKey()
	nkeySeed, _ := nkeyUser.Seed()
	seedFile := write(t, dir, "user.nk", nkeySeed)
	creds, operatorOpts := operatorMode(t, dir)

	for _, tc := range []struct {
		name   string
		server func(o *natsserver.Options)
		auth   config.NATSAuth
		scheme string
	}{
		{"user and password", func(o *natsserver.Options) { o.Username, o.Password = "worker", "pw" },
			config.NATSAuth{NATSUser: "worker", NATSPassword: "pw"}, "nats"},
		{"token", func(o *natsserver.Options) { o.Authorization = "t0ken" }, config.NATSAuth{NATSToken: "t0ken"}, "nats"},
		{"nkey", func(o *natsserver.Options) { o.Nkeys = []*natsserver.NkeyUser{{Nkey: nkeyPub}} }, config.NATSAuth{NATSNKeySeed: seedFile}, "nats"},
		{"creds file (JWT)", operatorOpts, config.NATSAuth{NATSCreds: creds}, "nats"},
		{"TLS", func(o *natsserver.Options) { o.TLSConfig = pki.serverTLS(false) }, config.NATSAuth{NATSTLSCA: pki.ca}, "tls"},
		{"mutual TLS", func(o *natsserver.Options) { o.TLSConfig = pki.serverTLS(true); o.TLSVerify = true },
			config.NATSAuth{NATSTLSCA: pki.ca, NATSTLSCert: pki.clientCert, NATSTLSKey: pki.clientKey}, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true}
			tc.server(o)
			ns := workertest.NATSWith(t, o)
			url := tc.scheme + "://" + ns.Addr().String()
			// Without the credentials (TLS alone asks for none) the worker
			// does not start.
			if tc.name != "TLS" {
				bare := config.Defaults()
				bare.NATSURL, bare.HTTPAddr = url, "127.0.0.1:0"
				if tc.scheme == "tls" {
					bare.NATSTLSCA = pki.ca // trusts the server, shows no certificate
				}
				if _, err := srv.New(context.Background(), bare, zap.NewNop()); err == nil {
					t.Fatal("worker started without credentials")
				}
			}
			cfg := config.Defaults()
			cfg.NATSURL, cfg.HTTPAddr, cfg.NATSAuth = url, "127.0.0.1:0", tc.auth
			ctx, cancel := context.WithCancel(context.Background())
			s, err := srv.New(ctx, cfg, zap.NewNop())
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { defer close(done); _ = s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			opts, err := tc.auth.Options(url)
			if err != nil {
				t.Fatal(err)
			}
			// The same credentials, but the inbox of a client, not the
			// worker's own (a reply there is refused as reserved).
			nc, err := nats.Connect(url, append(opts, nats.CustomInboxPrefix("_INBOX_client"))...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			client, _ := producer.NewClient(nc)
			res, err := client.Submit(ctx, "auth", wire("auth-1", "task", "pattern", 0.5), 10*time.Second)
			if err != nil || !strings.Contains(string(res), `"status":"scored"`) {
				t.Fatalf("%v %s", err, res)
			}
		})
	}
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// operatorMode makes an operator, an account with JetStream and a user,
// and returns the user's creds file and the server options that trust them.
func operatorMode(t *testing.T, dir string) (string, func(*natsserver.Options)) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := ukp.Seed()
	credsData, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	creds := write(t, dir, "user.creds", credsData)
	// The server's own system account.
	skp, _ := nkeys.CreateAccount()
	spub, _ := skp.PublicKey()
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	oc.SystemAccount = spub
	if ojwt, err = oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	operator, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	return creds, func(o *natsserver.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{operator}
		o.SystemAccount = spub
		r := &natsserver.MemAccResolver{}
		_ = r.Store(apub, ajwt)
		_ = r.Store(spub, sjwt)
		o.AccountResolver = r
	}
}

type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	caPool                                           *x509.CertPool
	caCert                                           *x509.Certificate
	caKey                                            *ecdsa.PrivateKey
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	p := &pki{caPool: x509.NewCertPool()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hybridscore test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caPool.AddCert(p.caCert)
	p.ca = write(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	p.serverCert, p.serverKey = p.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = p.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (cert, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return write(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		write(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func (p *pki) serverTLS(verifyClients bool) *tls.Config {
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		panic(err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if verifyClients {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.caPool
	}
	return c
}

// The Redis tier with requirepass and with TLS (a CA made here): up with
// the right settings; a wrong password leaves the worker degraded, not down.
func TestRedisPasswordAndTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	for _, tc := range []struct {
		name   string
		opts   redistest.Options
		mutate func(*config.Config)
		up     bool
	}{
		{"password", redistest.Options{Password: "r3dis"}, func(c *config.Config) { c.RedisPassword = "r3dis" }, true},
		{"wrong password", redistest.Options{Password: "r3dis"}, func(c *config.Config) { c.RedisPassword = "wrong" }, false},
		{"TLS", redistest.Options{TLSCert: p.serverCert, TLSKey: p.serverKey, TLSCA: p.ca},
			func(c *config.Config) { c.RedisTLS, c.RedisTLSCA = true, p.ca }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.StartWith(t, tc.opts)
			host, port, _ := strings.Cut(rs.Addr, ":")
			h := newHarness(t, func(c *config.Config) {
				c.RedisHost = host
				fmt.Sscan(port, &c.RedisPort)
				tc.mutate(c)
			})
			want := "redis_up 1"
			if !tc.up {
				want = "redis_up 0"
			}
			waitMetrics(t, h, want)
			rep := getHealth(t, h)
			if (rep.Components["redis"] == health.Healthy) != tc.up {
				t.Fatalf("health %+v", rep)
			}
		})
	}
}
