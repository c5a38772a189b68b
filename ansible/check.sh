#!/usr/bin/env bash
# Offline checks of the provisioning (no VMs): lint, syntax, inventory, Vagrantfile, templates.
# Uses ansible, ansible-lint and yamllint from $ANSIBLE_VENV (scripts/test.sh creates it).
set -euo pipefail
cd "$(dirname "$0")"
venv="${ANSIBLE_VENV:?set ANSIBLE_VENV to a virtualenv with ansible/requirements.txt installed}"
export PATH="$venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

echo "yamllint"
yamllint --strict .
yamllint --strict -c ../kubernetes/.yamllint ../kubernetes ../runtime-class
echo "ansible-lint (production profile)"
ansible-lint --offline
echo "syntax check"
ansible-playbook --syntax-check -i inventory-sample.yml playbooks/site.yml
ansible-playbook --syntax-check -i localhost, tests/local.yml
echo "inventory"
ansible-inventory -i inventory-sample.yml --list > /dev/null
for group in server agent k3s_cluster; do
    ansible-inventory -i inventory-sample.yml --graph "$group" | grep -q . || { echo "no group $group" >&2; exit 1; }
done
echo "contracts with upstream: the shim's runtime in k3s's containerd config, downloads per architecture"
python -m unittest discover -s tests -p 'test_*.py'
echo "templates"
ansible-playbook -i localhost, -c local tests/local.yml
echo "Vagrantfile"
if command -v vagrant >/dev/null; then
    (cd .. && VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate --ignore-provider)
elif [ "${CI:-}" = true ]; then
    echo "vagrant is missing (apt-get install vagrant)" >&2; exit 1
else
    echo "SKIPPED: vagrant is not installed"
fi
echo "provisioning: all checks passed"
