package s3

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Values of UploadOptions.SSE, as S3's x-amz-server-side-encryption.
const (
	SSES3  = "AES256"  // SSE-S3: keys managed by the store
	SSEKMS = "aws:kms" // SSE-KMS: a key of the store's KMS
)

// Values of UploadOptions.LockMode, as S3's x-amz-object-lock-mode.
const (
	LockGovernance = "GOVERNANCE"
	LockCompliance = "COMPLIANCE"
)

// archiveClasses are the storage classes whose objects cannot be read
// without a restore request first: a repository in one could not be read.
var archiveClasses = map[string]bool{"GLACIER": true, "DEEP_ARCHIVE": true}

// UploadOptions are what every upload asks of the store: a storage class,
// server-side encryption and an object-lock retention. The zero value
// asks for nothing (the bucket's defaults). docs/S3.md describes each.
type UploadOptions struct {
	// StorageClass is S3's storage class (STANDARD_IA, GLACIER_IR, …);
	// empty: the bucket's default. GLACIER and DEEP_ARCHIVE are refused.
	StorageClass string
	// SSE is SSES3 or SSEKMS; empty: the bucket's default encryption.
	SSE string
	// SSEKMSKeyID is the KMS key of SSE-KMS (ID, ARN or alias); empty:
	// the store's default key. Only with SSE SSEKMS.
	SSEKMSKeyID string
	// LockMode is LockGovernance or LockCompliance: each object but the
	// short-lived locks/ is uploaded with this object-lock retention,
	// until LockRetain after its upload. Both or neither are set.
	LockMode   string
	LockRetain time.Duration
}

// Validate reports the first thing wrong with o, in one line naming the
// setting.
func (o UploadOptions) Validate() error {
	if c := o.StorageClass; c != "" {
		if archiveClasses[c] {
			return fmt.Errorf("storage class %s: its objects must be restored before they can be read, and syncd reads index, snapshot and tree objects at every run; use GLACIER_IR, STANDARD_IA or a lifecycle rule for data/ only", c)
		}
		if strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			return fmt.Errorf("storage class %q: want an S3 storage class in capitals, like STANDARD_IA", c)
		}
	}
	switch o.SSE {
	case "", SSES3, SSEKMS:
	default:
		return fmt.Errorf("server-side encryption %q: want %s (SSE-S3) or %s (SSE-KMS)", o.SSE, SSES3, SSEKMS)
	}
	if o.SSEKMSKeyID != "" && o.SSE != SSEKMS {
		return fmt.Errorf("a KMS key ID is only for server-side encryption %s", SSEKMS)
	}
	switch o.LockMode {
	case "":
		if o.LockRetain != 0 {
			return fmt.Errorf("object-lock retention %v without a mode: want %s or %s", o.LockRetain, LockGovernance, LockCompliance)
		}
	case LockGovernance, LockCompliance:
		if o.LockRetain <= 0 {
			return fmt.Errorf("object-lock mode %s without a retention period above 0", o.LockMode)
		}
	default:
		return fmt.Errorf("object-lock mode %q: want %s or %s", o.LockMode, LockGovernance, LockCompliance)
	}
	return nil
}

// retainUntil is the object-lock retention date of an upload of name now,
// or nil for none.
func (o UploadOptions) retainUntil(name string, now time.Time) *time.Time {
	if o.LockMode == "" || strings.HasPrefix(name, "locks/") {
		return nil
	}
	t := now.Add(o.LockRetain).UTC()
	return &t
}

// applyPut sets o on a single-part upload of name.
func (o UploadOptions) applyPut(in *awss3.PutObjectInput, name string) {
	in.StorageClass = types.StorageClass(o.StorageClass)
	in.ServerSideEncryption = types.ServerSideEncryption(o.SSE)
	if o.SSEKMSKeyID != "" {
		in.SSEKMSKeyId = aws.String(o.SSEKMSKeyID)
	}
	if t := o.retainUntil(name, time.Now()); t != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(o.LockMode), t
	}
}

// applyUpload sets o on a multipart upload of name.
func (o UploadOptions) applyUpload(in *transfermanager.UploadObjectInput, name string) {
	in.StorageClass = tmtypes.StorageClass(o.StorageClass)
	in.ServerSideEncryption = tmtypes.ServerSideEncryption(o.SSE)
	if o.SSEKMSKeyID != "" {
		in.SSEKMSKeyID = aws.String(o.SSEKMSKeyID)
	}
	if t := o.retainUntil(name, time.Now()); t != nil {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = tmtypes.ObjectLockMode(o.LockMode), t
	}
}
