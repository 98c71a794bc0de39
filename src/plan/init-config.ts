/** Renders the commented depl.yaml that `depl init` writes. Pure: the template text is passed in. */
export interface InitChoices {
  app: string;
  domain: string;
  provider: 'local' | 'openstack';
}

const providers = {
  local: `provider:
  type: local     # each node is a container running sshd and its own dockerd, reached over SSH
  nodes: 3
  subnet: 192.168.77.0/24`,
  openstack: `provider:
  type: openstack
  cloud: nectar               # the cloud's name in clouds.yaml (or set OS_CLOUD / OS_* variables)
  template: heat/stack.yaml
  nodes: 3
  parameters:
    image: "NeCTAR Ubuntu 22.04 LTS (Jammy) amd64"
    flavor: m3.small
    # key_name: my-nectar-key # optional: a Nova key pair you made; without it depl uploads
    #                         # .depl/id_ed25519.pub as key pair "depl-<app>"
    availability_zone: melbourne-qh2`,
};

export function renderInitConfig(template: string, choices: InitChoices): string {
  return template
    .replace('__APP__', choices.app)
    .replace('__DOMAIN__', choices.domain)
    .replace('__PROVIDER__', providers[choices.provider])
    .replace('__SSH_USER__', choices.provider === 'openstack' ? 'ubuntu' : 'root');
}
