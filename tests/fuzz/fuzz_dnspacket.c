/*
 * Fuzz target: the DNS response parser (src/dns/packet.c), fed hostile
 * packets for every record type we ask for.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dns/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR, DNS_T_TLSA, DNS_T_CNAME };
	struct dns_answer a;
	if (size < 1)
		return 0;
	if (dns_packet_parse(data + 1, size - 1, "example.com", types[data[0] % 7], &a) == 0) {
		if (a.nrrs > DNS_MAX_RRS)
			abort();
		dns_answer_clear(&a);
	}
	return 0;
}
