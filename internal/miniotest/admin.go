package miniotest

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/secure-io/sio-go"
)

// AddUser creates the user name with secret key secret whose only
// permissions are the IAM-style policy policyJSON, for example
//
//	{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
//	  "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::bucket/*"]}]}
//
// It speaks MinIO's admin API (v3) as the root user: add the policy as a
// canned policy named after the user, add the user, attach the policy.
func (s *Server) AddUser(t testing.TB, name, secret, policyJSON string) {
	t.Helper()
	policy := "policy-" + name
	s.admin(t, "add-canned-policy", url.Values{"name": {policy}}, []byte(policyJSON))

	req, err := json.Marshal(map[string]string{"secretKey": secret, "status": "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	body, err := encrypt(s.SecretKey, req)
	if err != nil {
		t.Fatalf("miniotest: add user %s: %v", name, err)
	}
	s.admin(t, "add-user", url.Values{"accessKey": {name}}, body)

	s.admin(t, "set-user-or-group-policy", url.Values{
		"policyName": {policy}, "userOrGroup": {name}, "isGroup": {"false"},
	}, nil)
}

// admin sends a signed PUT to /minio/admin/v3/<op>, retrying for a while
// when the server says it is still starting.
func (s *Server) admin(t testing.TB, op string, query url.Values, body []byte) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.adminOnce(op, query, body)
		if err == nil {
			return
		}
		if err != errNotReady || time.Now().After(deadline) {
			t.Fatalf("miniotest: admin %s: %v", op, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) adminOnce(op string, query url.Values, body []byte) error {
	u := s.Endpoint + "/minio/admin/v3/" + op + "?" + query.Encode()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", s.Region, time.Now()); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return nil
	case resp.StatusCode == http.StatusServiceUnavailable || bytes.Contains(msg, []byte("XMinioServerNotInitialized")):
		return errNotReady
	case bytes.Contains(msg, []byte("XMinioAdminNoSuchPolicy")):
		// AddUser attaches the policy it has just added: MinIO's IAM
		// cache may not have it yet (seen on a loaded machine)
		return errNotReady
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// encrypt seals data for MinIO's admin API as madmin.EncryptData does in
// FIPS mode: salt (32) | algorithm ID (1) | nonce (8) | sio stream of data
// under an AES-256-GCM key derived from password with PBKDF2-SHA256.
func encrypt(password string, data []byte) ([]byte, error) {
	const pbkdf2AESGCM = 0x02 // madmin's algorithm ID
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, 8192, 32)
	if err != nil {
		return nil, err
	}
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, stream.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(salt)
	out.WriteByte(pbkdf2AESGCM)
	out.Write(nonce)
	w := stream.EncryptWriter(&out, nonce, nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
