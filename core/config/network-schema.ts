import { z } from 'zod';
import { defaultDeniedNetworks, parseCidr } from '../net/address-policy.js';

/** A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is one host), checked by the parser used at run time. */
export const cidrSchema = z.string().check((ctx) => {
  try {
    parseCidr(ctx.value);
  } catch (error) {
    ctx.issues.push({ code: 'custom', input: ctx.value, message: (error as Error).message });
  }
});

/**
 * `deniedNetworks` / `allowedNetworks` of a plugin that connects where a request says (downloads, git remotes).
 * `what` names the connections in the descriptions.
 */
export function networkPolicyFields(what: string) {
  return {
    deniedNetworks: z
      .array(cidrSchema)
      .default([...defaultDeniedNetworks])
      .describe(
        `Networks (CIDR) ${what} never connect to, checked on every resolved address: by default loopback, unspecified, link-local (cloud metadata 169.254.169.254) and the Alibaba and AWS-IPv6 metadata addresses. Setting it replaces the defaults: list them too, and add the cluster pod/service and node networks to keep requests off internal services.`,
      ),
    allowedNetworks: z
      .array(cidrSchema)
      .default([])
      .describe(`Networks (CIDR) ${what} may always connect to, even inside deniedNetworks (e.g. a mirror on the node).`),
  };
}
