//! Handing a response to Spin, for both components (wasm only).

use spin_sdk::http::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// Hands `status`, `headers` and `body` to Spin with the body already complete, and returns once
/// the response is on its way: work done after this call does not delay the client.
///
/// Spin's SDK sets the response first and writes its body after. When the request ran a store
/// call (Spin runs SQLite on a blocking thread, which moves the request's task between the
/// runtime's threads), the server can send the head before the body exists; on a kept-alive
/// connection the body then waits out the client's delayed acknowledgement (40 ms on Linux;
/// what it cost: benchmarks/README.md). Written first, head and body leave together. `head` (a `HEAD` request) sends the headers only.
pub fn respond(
    out: ResponseOutparam,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head: bool,
) {
    let mut list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    if !head {
        list.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = match Fields::from_list(&list) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("invalid response header ({e:?}) in {headers:?}");
            Fields::new()
        }
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    let Ok(stream) = outgoing.write() else {
        return;
    };
    let body: &[u8] = if head { &[] } else { body };
    // The whole body in one write when the stream takes it before the response is set (its
    // budget, 1 MiB on Spin); a larger body is streamed after.
    let written_first = body.is_empty()
        || (matches!(stream.check_write(), Ok(n) if n >= body.len() as u64)
            && stream.write(body).is_ok());
    if !written_first {
        out.set(response);
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                eprintln!("writing the response failed: {e:?}");
                return;
            }
        }
        drop(stream);
        let _ = OutgoingBody::finish(outgoing, None);
        return;
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
    out.set(response);
}
