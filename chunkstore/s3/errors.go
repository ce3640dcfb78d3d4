package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Kinds of failure an operator must act on. Errors from this package match
// at most one of them (errors.Is).
var (
	// ErrAccessDenied: the credentials are wrong (unknown access key, wrong
	// secret, expired token) or lack the permission for the request.
	ErrAccessDenied = errors.New("access denied")

	// ErrBucketNotExist: the bucket does not exist (and, from Create, the
	// credentials may not create it).
	ErrBucketNotExist = errors.New("bucket does not exist")

	// ErrWrongRegion: the bucket is in another region than the one
	// configured.
	ErrWrongRegion = errors.New("wrong region")

	// ErrUnreachable: no answer from the endpoint (connection refused, DNS,
	// TLS, or no response in time), after retries.
	ErrUnreachable = errors.New("endpoint unreachable")
)

// Error is a failed S3 request described in one line. It matches its kind
// (one of the Err… values of this package, or backend.ErrNotExist) and wraps
// the SDK's error.
type Error struct {
	Op     string // what was done: "open", "save", "stat", …
	Bucket string // the bucket
	Name   string // the object name, or "" for the bucket itself
	Msg    string // what went wrong, in words
	kind   error
	Err    error // the underlying error
}

// Error returns "s3: OP NAME: MSG" (or "s3: OP s3://BUCKET: MSG").
func (e *Error) Error() string {
	what := e.Name
	if what == "" {
		what = "s3://" + e.Bucket
	}
	return "s3: " + e.Op + " " + what + ": " + e.Msg
}

// Unwrap returns the kind and the underlying error.
func (e *Error) Unwrap() []error {
	if e.kind == nil {
		return []error{e.Err}
	}
	return []error{e.kind, e.Err}
}

// fail translates err from operation op on object name ("" for the bucket)
// into an *Error when it is one an operator should read in words, and into
// "s3: op name: err" otherwise.
func (b *Backend) fail(op, name string, err error) error {
	e := &Error{Op: op, Bucket: b.bucket, Name: name, Err: err}
	var (
		apiErr  smithy.APIError
		respErr *smithyhttp.ResponseError
		sendErr *smithyhttp.RequestSendError
		status  int
		code    string
	)
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	// A HEAD request's error has no body, hence no code: name it by status.
	if code == strings.ReplaceAll(http.StatusText(status), " ", "") {
		code = ""
	}
	label := code
	if label == "" && status != 0 {
		label = fmt.Sprintf("%d %s", status, http.StatusText(status))
	}

	switch {
	case code == "NoSuchKey" || (code == "" && status == http.StatusNotFound && name != ""):
		e.Msg, e.kind = "object does not exist", backend.ErrNotExist

	case code == "NoSuchBucket" || (code == "" && status == http.StatusNotFound):
		e.Msg = fmt.Sprintf("bucket %s does not exist (%s)", b.bucket, label)
		e.kind = ErrBucketNotExist

	case code == "InvalidAccessKeyId":
		e.Msg = fmt.Sprintf("invalid credentials for bucket %s: the server does not know the access key ID (%s)", b.bucket, label)
		e.kind = ErrAccessDenied
	case code == "SignatureDoesNotMatch":
		e.Msg = fmt.Sprintf("invalid credentials for bucket %s: the secret access key does not match the access key ID (%s)", b.bucket, label)
		e.kind = ErrAccessDenied
	case code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired":
		e.Msg = fmt.Sprintf("invalid credentials for bucket %s: the session token is expired or invalid (%s)", b.bucket, label)
		e.kind = ErrAccessDenied
	case code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem":
		e.Msg = fmt.Sprintf("access denied for bucket %s: the credentials lack the permission to %s (%s)", b.bucket, op, label)
		e.kind = ErrAccessDenied
	case code == "" && status == http.StatusForbidden:
		e.Msg = fmt.Sprintf("access denied / invalid credentials for bucket %s (%s)", b.bucket, label)
		e.kind = ErrAccessDenied

	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" ||
		code == "IllegalLocationConstraintException" || code == "InvalidRegion" ||
		status == http.StatusMovedPermanently:
		e.Msg = fmt.Sprintf("wrong region %s for bucket %s", b.region, b.bucket)
		if respErr != nil {
			if r := respErr.Response.Header.Get("X-Amz-Bucket-Region"); r != "" && r != b.region {
				set := "AWS_REGION=" + r
				if b.cfg.Region != "" {
					set = "the region to " + r
				}
				e.Msg += fmt.Sprintf(": it is in %s (set %s)", r, set)
			}
		}
		if apiErr != nil && apiErr.ErrorMessage() != "" {
			e.Msg += ": " + oneLine(errors.New(apiErr.ErrorMessage()))
		}
		e.Msg += " (" + label + ")"
		e.kind = ErrWrongRegion

	case code == "RequestTimeTooSkewed":
		e.Msg = fmt.Sprintf("this host's clock is too far from the server's; fix the time (%s)", label)

	case strings.Contains(err.Error(), "get identity: "):
		// The SDK found no credentials, or could not fetch them; it has no
		// error type for that.
		e.Msg = "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role"
		e.kind = ErrAccessDenied

	case errors.As(err, &sendErr):
		e.Msg = "cannot reach endpoint " + b.describeSend(sendErr)
		e.kind = ErrUnreachable

	case errors.Is(err, context.DeadlineExceeded) && (op == "open" || op == "create"):
		e.Msg = fmt.Sprintf("cannot reach endpoint %s: no answer within %v", b.endpoint, probeTimeout)
		e.kind = ErrUnreachable

	default:
		what := name
		if what == "" {
			what = "s3://" + b.bucket
		}
		return fmt.Errorf("s3: %s %s: %w", op, what, err)
	}
	return e
}

// describeSend names the endpoint a request could not be sent to and why:
// "http://127.0.0.1:9000: dial tcp …: connection refused".
func (b *Backend) describeSend(err *smithyhttp.RequestSendError) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return endpointOf(ue.URL) + ": " + oneLine(ue.Err)
	}
	return b.endpoint + ": " + oneLine(err.Err)
}

// oneLine returns err's message with line breaks folded into "; ".
func oneLine(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
