// Real AWS SDK for JavaScript v3 probe for the fintors end-to-end tests.
//
//   node whoami.mjs imds|container|http|default
//
//   imds       fromInstanceMetadata()   (@smithy/credential-provider-imds)
//   container  fromContainerMetadata()  (@smithy/credential-provider-imds)
//   http       fromHttp()               (@aws-sdk/credential-provider-http)
//   default    new STSClient({}): the SDK's default credential chain
//
// Calls STS GetCallerIdentity and prints the caller ARN on stdout, nothing
// else. Region comes from AWS_REGION (the SDK's own region resolution). The
// STS endpoint is not set in code: this SDK version honours
// AWS_ENDPOINT_URL_STS (and AWS_ENDPOINT_URL) by itself.
// Errors go to stderr, exit status 1.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import {
  fromContainerMetadata,
  fromHttp,
  fromInstanceMetadata,
} from "@aws-sdk/credential-providers";

const USAGE = "usage: node whoami.mjs imds|container|http|default";

const providers = {
  imds: () => fromInstanceMetadata(),
  container: () => fromContainerMetadata(),
  http: () => fromHttp(),
  default: () => undefined,
};

async function main(argv) {
  // Node 20 is supported but the SDK prints a deprecation notice on stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  if (argv.length !== 1 || !Object.hasOwn(providers, argv[0])) {
    throw new Error(USAGE);
  }
  const credentials = providers[argv[0]]();
  const client = new STSClient(credentials ? { credentials } : {});
  try {
    const out = await client.send(new GetCallerIdentityCommand({}));
    if (!out.Arn) {
      throw new Error("GetCallerIdentity returned no Arn");
    }
    process.stdout.write(`${out.Arn}\n`);
  } finally {
    client.destroy();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`whoami: ${err?.name ?? "Error"}: ${err?.message ?? err}\n`);
  process.exit(1);
});
