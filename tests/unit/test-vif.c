/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backend keys are untrusted: every hostile value must be refused with a
 * message naming the key and quoting the value. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xennet/vif.h"
#include "xennet/vifstate.h"

#include "check.h"

struct kv {
	const char *keys[8];
	const char *values[8];
};

static const char *get(const char *key, void *ud)
{
	struct kv *kv = ud;

	for (int i = 0; i < 8 && kv->keys[i]; i++)
		if (strcmp(kv->keys[i], key) == 0)
			return kv->values[i];
	return NULL;
}

static void bad(const char *key, const char *value, const char *want)
{
	struct kv kv = { { key }, { value } };
	struct xn_vif_conf c;
	struct xn_buf err = { 0 };
	int r = xn_vif_conf_read(3, 0, get, &kv, &c, &err);

	check(r == -EINVAL, "%s=%s refused", key, value == XN_VIF_BAD_VALUE ? "<bad>" : value);
	check(strstr(xn_buf_str(&err), want) != NULL, "%s: message \"%s\" lacks \"%s\"", key,
	      xn_buf_str(&err), want);
	xn_buf_free(&err);
}

int main(void)
{
	struct xn_vif_conf c;
	struct xn_buf err = { 0 };
	char a[XN_ADDR_STRLEN], m[18];
	unsigned d, n;
	const char *key;
	bool emu;

	struct kv good = { { "bridge", "mac", "ip", "mtu", "vifname", "type", "gatewaydev" },
			   { "xenbr0", "00:16:3e:0a:0b:0c", "10.0.0.5 10.0.1.0/24 fd00::5", "9000",
			     "web0", "vif_ioemu", "eth1" } };
	check(xn_vif_conf_read(7, 1, get, &good, &c, &err) == 0, "good keys: %s", xn_buf_str(&err));
	check(c.domid == 7 && c.devid == 1 && c.ioemu, "ids and type");
	check(strcmp(c.bridge, "xenbr0") == 0 && strcmp(c.vifname, "web0") == 0 &&
		      strcmp(c.gatewaydev, "eth1") == 0, "names");
	check(c.has_mac && strcmp(xn_format_mac(c.mac, m), "00:16:3e:0a:0b:0c") == 0, "mac");
	check(c.mtu == 9000, "mtu");
	check(c.n_ips == 3 && strcmp(xn_addr_format(&c.ips[0], true, a), "10.0.0.5/32") == 0 &&
		      strcmp(xn_addr_format(&c.ips[1], true, a), "10.0.1.0/24") == 0 &&
		      strcmp(xn_addr_format(&c.ips[2], true, a), "fd00::5/128") == 0,
	      "ips");
	struct kv none = { { 0 }, { 0 } };
	check(xn_vif_conf_read(1, 0, get, &none, &c, &err) == 0 && !c.has_mac && c.n_ips == 0 &&
		      !c.bridge[0] && !c.ioemu, "no keys at all is fine");

	bad("ip", "1.2.3.4;reboot", "backend/vif/3/0/ip: \"1.2.3.4;reboot\" is not a space-separated list");
	bad("ip", "1.2.3.4 $(reboot)", "\"1.2.3.4 $(reboot)\"");
	bad("ip", "1.2.3.999", "\"1.2.3.999\" is not an IP address");
	bad("ip", "10.0.0.1/33", "\"10.0.0.1/33\" is not an IP address");
	bad("ip", "   ", "holds no address");
	bad("bridge", "a-bridge-name-of-forty-characters-000000", "is longer than 15 bytes");
	bad("bridge", "br0;reboot", "is not a valid interface name");
	bad("bridge", "..", "is not a valid interface name");
	bad("bridge", "", "is not a valid interface name");
	bad("vifname", "web 0", "backend/vif/3/0/vifname");
	bad("vifname", "vif7.1", "looks like a kernel vif name");
	bad("mac", "00:16:3e:0a:0b", "backend/vif/3/0/mac: \"00:16:3e:0a:0b\"");
	bad("mac", "01:16:3e:0a:0b:0c", "unicast");
	bad("mac", "00:00:00:00:00:00", "unicast");
	bad("mac", "zz:16:3e:0a:0b:0c", "mac");
	bad("mtu", "0", "backend/vif/3/0/mtu: \"0\" is not an MTU between 68 and 65535");
	bad("mtu", "65536", "between 68 and 65535");
	bad("mtu", "1500x", "\"1500x\"");
	bad("mtu", "-1", "\"-1\"");
	bad("type", "vif2", "neither \"vif\" nor \"vif_ioemu\"");
	bad("ip", XN_VIF_BAD_VALUE, "unreadable value");
	bad("ip", "1.2.3.4\x1b[2J", "\\x1b");

	check(xn_vif_parse_path("backend/vif/12/3", &d, &n, &key) == 0 && d == 12 && n == 3 && !*key,
	      "relative backend path");
	check(xn_vif_parse_path("/local/domain/0/backend/vif/12/3/mac", &d, &n, &key) == 0 &&
		      strcmp(key, "mac") == 0, "absolute path with key");
	check(xn_vif_parse_path("backend/vif/012/3", &d, &n, &key) < 0, "leading zero refused");
	check(xn_vif_parse_path("backend/vif/32752/0", &d, &n, &key) < 0, "reserved domid refused");
	check(xn_vif_parse_path("backend/vif/1/x", &d, &n, &key) < 0, "non-numeric devid refused");
	check(xn_vif_parse_path("xbackend/vif/1/0", &d, &n, &key) < 0, "prefix junk refused");
	check(xn_vif_parse_path("backend/vif/1", &d, &n, &key) < 0, "domain dir is not a vif");

	char name[IFNAMSIZ];
	check(xn_vif_kernel_name(5, 0, true, name) == 0 && strcmp(name, "vif5.0-emu") == 0, "emu name");
	check(xn_vif_kernel_name(32000, 65535, true, name) == -ENAMETOOLONG, "too long emu name");
	check(xn_vif_parse_kernel_name("vif5.0-emu", &d, &n, &emu) == 0 && d == 5 && n == 0 && emu,
	      "parse emu name");
	check(xn_vif_parse_kernel_name("vif12.3", &d, &n, &emu) == 0 && d == 12 && n == 3 && !emu,
	      "parse vif name");
	check(xn_vif_parse_kernel_name("vif1.", &d, &n, &emu) < 0 &&
		      xn_vif_parse_kernel_name("vifx.0", &d, &n, &emu) < 0 &&
		      xn_vif_parse_kernel_name("veth0", &d, &n, &emu) < 0, "bad names refused");

	/* The saved vifs: what is written is read back the same; anything
	 * else in the file is refused, never half-read. */
	struct xn_vif_record rec = { .domid = 7, .devid = 1, .emu = false, .ifindex = 42,
				     .name = "web0", .mode = XN_MODE_ROUTED, .filtered = true,
				     .uplink = "eth0" }, back;
	struct xn_buf line = { 0 };
	rec.conf = (struct xn_vif_conf){ .domid = 7, .devid = 1, .has_mac = true,
					 .mac = { 0, 0x16, 0x3e, 1, 2, 3 }, .mtu = 1400,
					 .vifname = "web0", .gatewaydev = "eth0", .n_ips = 2 };
	xn_addr_parse("192.0.2.7/32", true, &rec.conf.ips[0]);
	xn_addr_parse("2001:db8::7/128", true, &rec.conf.ips[1]);
	check(xn_vif_record_format(&rec, &line) == 0, "record formatted");
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", xn_buf_str(&line));
	check(xn_vif_record_parse(copy, &back) == 0, "record parsed back: %s", xn_buf_str(&line));
	check(back.domid == 7 && back.devid == 1 && back.ifindex == 42 && !strcmp(back.name, "web0") &&
		      back.mode == XN_MODE_ROUTED && back.filtered && !strcmp(back.uplink, "eth0") &&
		      back.conf.has_mac && back.conf.mac[5] == 3 && back.conf.mtu == 1400 &&
		      back.conf.n_ips == 2 && !strcmp(back.conf.gatewaydev, "eth0") &&
		      !memcmp(&back.conf.ips[1], &rec.conf.ips[1], sizeof(rec.conf.ips[1])),
	      "record round trip");
	xn_buf_free(&line);
	static const char *const bad_records[] = {
		"",
		"vif",
		"vif 7 1",
		"vif 7 1 emu=0 ifindex=0 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name= mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a/b mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=xx bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=2 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac=zz mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=67 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=1.2.3.4",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip= extra=1",
		"vif 7 1 emu=0 ifindex=3 mode=nat name=a bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 32752 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=192.0.2.1/32,",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname= gatewaydev= keybridge= ioemu=0 ip=10.0.0.5/24",
		"vif 7 1 emu=0 ifindex=3 name=a mode=nat bridge= antispoof=0 uplink= mac= mtu=0 vifname=vif3.0 gatewaydev= keybridge= ioemu=0 ip=",
	};
	for (size_t i = 0; i < sizeof(bad_records) / sizeof(bad_records[0]); i++) {
		snprintf(copy, sizeof(copy), "%s", bad_records[i]);
		check(xn_vif_record_parse(copy, &back) == -EINVAL, "bad record refused: %s", bad_records[i]);
	}

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
