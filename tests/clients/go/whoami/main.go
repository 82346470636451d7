// Command whoami is a tiny real-client probe for the fintors end-to-end tests.
//
// It obtains credentials with aws-sdk-go-v2 (the Debian package
// golang-github-aws-aws-sdk-go-v2-dev, root module v1.17.1), calls STS
// GetCallerIdentity and prints the caller ARN on stdout, nothing else.
//
//	whoami [--region-from-imds] imds|container|default
//
//	imds       credentials only from credentials/ec2rolecreds, using the
//	           feature/ec2/imds client built by imds.NewFromConfig from the
//	           LoadDefaultConfig result (so AWS_EC2_METADATA_SERVICE_ENDPOINT,
//	           AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, AWS_EC2_METADATA_DISABLED
//	           and the shared-config equivalents apply exactly as in the SDK's
//	           default chain).
//	container  credentials only from credentials/endpointcreds, resolved by
//	           LoadDefaultConfig from AWS_CONTAINER_CREDENTIALS_FULL_URI (or
//	           _RELATIVE_URI) and AWS_CONTAINER_AUTHORIZATION_TOKEN; static env
//	           keys and AWS_WEB_IDENTITY_TOKEN_FILE are dropped in-process so
//	           the chain reaches the container branch, and the result is
//	           checked to really be the endpointcreds provider.
//	default    the default chain of config.LoadDefaultConfig, untouched.
//
// Region: AWS_REGION / AWS_DEFAULT_REGION / shared config as LoadDefaultConfig
// does; with --region-from-imds, config.WithEC2IMDSRegion is added (the SDK only
// consults IMDS when no region is configured otherwise).
//
// STS endpoint: this SDK version does not know AWS_ENDPOINT_URL_STS, so the
// program reads it itself and installs it with sts.EndpointResolverFromURL.
//
// Errors go to stderr, exit status 1.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const usage = "usage: whoami [--region-from-imds] imds|container|default"

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "whoami: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var mode string
	regionFromIMDS := false
	for _, a := range os.Args[1:] {
		switch {
		case a == "--region-from-imds":
			regionFromIMDS = true
		case a == "-h" || a == "--help":
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(1)
		case strings.HasPrefix(a, "-"):
			fail("unknown flag %q\n%s", a, usage)
		case mode == "":
			mode = a
		default:
			fail("unexpected argument %q\n%s", a, usage)
		}
	}
	if mode != "imds" && mode != "container" && mode != "default" {
		fail("%s", usage)
	}

	// No deadline on purpose: with a deadline-free context the IMDS client
	// applies its own 5s per-operation default (feature/ec2/imds
	// request_middleware.go, operationTimeout), as in a default program.
	ctx := context.Background()

	if mode == "container" {
		if os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") == "" &&
			os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") == "" {
			fail("container mode needs AWS_CONTAINER_CREDENTIALS_FULL_URI (or _RELATIVE_URI)")
		}
		// These take precedence over the container branch in the SDK's
		// default chain (config/resolve_credentials.go, resolveCredentialChain).
		for _, k := range []string{
			"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY",
			"AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
			"AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		} {
			os.Unsetenv(k)
		}
	}

	var opts []func(*config.LoadOptions) error
	if regionFromIMDS {
		// With no Client set the SDK uses imds.New(imds.Options{}), which
		// reads AWS_EC2_METADATA_SERVICE_ENDPOINT / AWS_EC2_METADATA_DISABLED.
		opts = append(opts, config.WithEC2IMDSRegion())
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		fail("load config: %v", err)
	}
	if cfg.Region == "" {
		fail("no region: set AWS_REGION or pass --region-from-imds")
	}

	switch mode {
	case "imds":
		provider := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
			o.Client = imds.NewFromConfig(cfg)
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	case "container":
		cache, ok := cfg.Credentials.(*aws.CredentialsCache)
		if !ok || !cache.IsCredentialsProvider(&endpointcreds.Provider{}) {
			fail("default chain did not resolve to the container (endpointcreds) provider (a profile with keys, AWS_PROFILE or shared config?)")
		}
	}

	var stsOpts []func(*sts.Options)
	if u := os.Getenv("AWS_ENDPOINT_URL_STS"); u != "" {
		stsOpts = append(stsOpts, func(o *sts.Options) {
			o.EndpointResolver = sts.EndpointResolverFromURL(u)
		})
	}
	client := sts.NewFromConfig(cfg, stsOpts...)
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fail("GetCallerIdentity: %v", err)
	}
	if out.Arn == nil {
		fail("GetCallerIdentity returned no Arn")
	}
	fmt.Println(*out.Arn)
}
