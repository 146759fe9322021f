//! An in-process server for the subset of Qdrant's gRPC API the product uses (create and check
//! a collection; upsert, search, count and delete points with keyword filters; cosine distance),
//! built from qdrant-client's own protobuf types, so `QdrantIndex` is tested through the real
//! client and a real gRPC connection where no Qdrant server can be installed. Every other RPC
//! answers `Unimplemented`, so a product change that starts using one fails loudly here.

use ::qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use ::qdrant_client::qdrant::points_server::{Points, PointsServer};
use ::qdrant_client::qdrant::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

type Stored = HashMap<u64, (Vec<f32>, HashMap<String, Value>)>;

#[derive(Default, Clone)]
pub struct FakeQdrant {
    collections: Arc<Mutex<HashMap<String, Stored>>>,
}

/// Starts the server on 127.0.0.1 (random port); returns its URL.
pub async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = FakeQdrant::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PointsServer::new(state.clone()))
            .add_service(CollectionsServer::new(state))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    url
}

fn dense(v: &Vector) -> Vec<f32> {
    #[allow(deprecated)]
    match &v.vector {
        Some(vector::Vector::Dense(d)) => d.data.clone(),
        _ => v.data.clone(),
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn num_id(id: &Option<PointId>) -> Result<u64, Status> {
    match id.as_ref().and_then(|p| p.point_id_options.as_ref()) {
        Some(point_id::PointIdOptions::Num(n)) => Ok(*n),
        _ => Err(Status::invalid_argument(
            "only numeric point ids are supported here",
        )),
    }
}

/// Keyword `must` conditions only: what the product sends.
fn passes(filter: &Option<Filter>, payload: &HashMap<String, Value>) -> Result<bool, Status> {
    let Some(f) = filter else { return Ok(true) };
    if !f.should.is_empty() || !f.must_not.is_empty() {
        return Err(Status::unimplemented(
            "only `must` filters are supported here",
        ));
    }
    for c in &f.must {
        let Some(condition::ConditionOneOf::Field(field)) = &c.condition_one_of else {
            return Err(Status::unimplemented(
                "only field conditions are supported here",
            ));
        };
        let want = match field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
            Some(r#match::MatchValue::Keyword(k)) => k,
            _ => {
                return Err(Status::unimplemented(
                    "only keyword matches are supported here",
                ))
            }
        };
        if payload.get(&field.key).and_then(|v| v.as_str()) != Some(want) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not in the fake Qdrant server"))
}

fn done() -> PointsOperationResponse {
    PointsOperationResponse {
        result: Some(UpdateResult {
            operation_id: Some(0),
            status: UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

#[tonic::async_trait]
impl Collections for FakeQdrant {
    async fn create(
        &self,
        r: Request<CreateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let name = r.into_inner().collection_name;
        let mut cols = self.collections.lock().expect("lock");
        if cols.contains_key(&name) {
            return Err(Status::already_exists(format!("collection {name} exists")));
        }
        cols.insert(name, Stored::new());
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn collection_exists(
        &self,
        r: Request<CollectionExistsRequest>,
    ) -> Result<Response<CollectionExistsResponse>, Status> {
        let exists = self
            .collections
            .lock()
            .expect("lock")
            .contains_key(&r.into_inner().collection_name);
        Ok(Response::new(CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: 0.0,
        }))
    }

    async fn get(
        &self,
        _: Request<GetCollectionInfoRequest>,
    ) -> Result<Response<GetCollectionInfoResponse>, Status> {
        Err(unimplemented("get"))
    }

    async fn list(
        &self,
        _: Request<ListCollectionsRequest>,
    ) -> Result<Response<ListCollectionsResponse>, Status> {
        Err(unimplemented("list"))
    }

    async fn update(
        &self,
        _: Request<UpdateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("update"))
    }

    async fn delete(
        &self,
        _: Request<DeleteCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("delete"))
    }

    async fn update_aliases(
        &self,
        _: Request<ChangeAliases>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("update_aliases"))
    }

    async fn list_collection_aliases(
        &self,
        _: Request<ListCollectionAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("list_collection_aliases"))
    }

    async fn list_aliases(
        &self,
        _: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("list_aliases"))
    }

    async fn collection_cluster_info(
        &self,
        _: Request<CollectionClusterInfoRequest>,
    ) -> Result<Response<CollectionClusterInfoResponse>, Status> {
        Err(unimplemented("collection_cluster_info"))
    }

    async fn update_collection_cluster_setup(
        &self,
        _: Request<UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<UpdateCollectionClusterSetupResponse>, Status> {
        Err(unimplemented("update_collection_cluster_setup"))
    }

    async fn create_shard_key(
        &self,
        _: Request<CreateShardKeyRequest>,
    ) -> Result<Response<CreateShardKeyResponse>, Status> {
        Err(unimplemented("create_shard_key"))
    }

    async fn delete_shard_key(
        &self,
        _: Request<DeleteShardKeyRequest>,
    ) -> Result<Response<DeleteShardKeyResponse>, Status> {
        Err(unimplemented("delete_shard_key"))
    }

    async fn list_shard_keys(
        &self,
        _: Request<ListShardKeysRequest>,
    ) -> Result<Response<ListShardKeysResponse>, Status> {
        Err(unimplemented("list_shard_keys"))
    }
}

impl FakeQdrant {
    fn with<T>(
        &self,
        collection: &str,
        f: impl FnOnce(&mut Stored) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let mut cols = self.collections.lock().expect("lock");
        let stored = cols
            .get_mut(collection)
            .ok_or_else(|| Status::not_found(format!("no collection {collection}")))?;
        f(stored)
    }
}

#[tonic::async_trait]
impl Points for FakeQdrant {
    async fn upsert(
        &self,
        r: Request<UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let r = r.into_inner();
        self.with(&r.collection_name, |stored| {
            for p in r.points {
                let id = num_id(&p.id)?;
                let vector = match p.vectors.and_then(|v| v.vectors_options) {
                    Some(vectors::VectorsOptions::Vector(v)) => unit(dense(&v)),
                    _ => {
                        return Err(Status::invalid_argument(
                            "one unnamed dense vector per point expected",
                        ))
                    }
                };
                stored.insert(id, (vector, p.payload));
            }
            Ok(())
        })?;
        Ok(Response::new(done()))
    }

    async fn delete(
        &self,
        r: Request<DeletePoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let r = r.into_inner();
        let filter = match r.points.and_then(|p| p.points_selector_one_of) {
            Some(points_selector::PointsSelectorOneOf::Filter(f)) => Some(f),
            _ => {
                return Err(Status::unimplemented(
                    "only delete by filter is supported here",
                ))
            }
        };
        self.with(&r.collection_name, |stored| {
            let mut keep = Stored::new();
            for (id, (v, p)) in stored.drain() {
                if !passes(&filter, &p)? {
                    keep.insert(id, (v, p));
                }
            }
            *stored = keep;
            Ok(())
        })?;
        Ok(Response::new(done()))
    }

    async fn search(&self, r: Request<SearchPoints>) -> Result<Response<SearchResponse>, Status> {
        let r = r.into_inner();
        let query = unit(r.vector.clone());
        let mut result = self.with(&r.collection_name, |stored| {
            let mut hits = Vec::new();
            for (id, (v, p)) in stored.iter() {
                if v.len() != query.len() {
                    return Err(Status::invalid_argument(format!(
                        "wrong vector dimension: expected {}, got {}",
                        v.len(),
                        query.len()
                    )));
                }
                if passes(&r.filter, p)? {
                    let score = v.iter().zip(&query).map(|(a, b)| a * b).sum();
                    let payload = if r.with_payload.is_some() {
                        p.clone()
                    } else {
                        HashMap::new()
                    };
                    hits.push(ScoredPoint {
                        id: Some((*id).into()),
                        payload,
                        score,
                        ..Default::default()
                    });
                }
            }
            Ok(hits)
        })?;
        result.sort_by(|a, b| b.score.total_cmp(&a.score));
        result.truncate(r.limit as usize);
        Ok(Response::new(SearchResponse {
            result,
            time: 0.0,
            usage: None,
        }))
    }

    async fn count(&self, r: Request<CountPoints>) -> Result<Response<CountResponse>, Status> {
        let r = r.into_inner();
        let count = self.with(&r.collection_name, |stored| {
            let mut n = 0;
            for (_, p) in stored.values() {
                n += u64::from(passes(&r.filter, p)?);
            }
            Ok(n)
        })?;
        Ok(Response::new(CountResponse {
            result: Some(CountResult { count }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn get(&self, _: Request<GetPoints>) -> Result<Response<GetResponse>, Status> {
        Err(unimplemented("get"))
    }

    async fn update_vectors(
        &self,
        _: Request<UpdatePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("update_vectors"))
    }

    async fn delete_vectors(
        &self,
        _: Request<DeletePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_vectors"))
    }

    async fn set_payload(
        &self,
        _: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("set_payload"))
    }

    async fn overwrite_payload(
        &self,
        _: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("overwrite_payload"))
    }

    async fn delete_payload(
        &self,
        _: Request<DeletePayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_payload"))
    }

    async fn clear_payload(
        &self,
        _: Request<ClearPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("clear_payload"))
    }

    async fn create_field_index(
        &self,
        _: Request<CreateFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("create_field_index"))
    }

    async fn delete_field_index(
        &self,
        _: Request<DeleteFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_field_index"))
    }

    async fn create_vector_name(
        &self,
        _: Request<CreateVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("create_vector_name"))
    }

    async fn delete_vector_name(
        &self,
        _: Request<DeleteVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_vector_name"))
    }

    async fn search_batch(
        &self,
        _: Request<SearchBatchPoints>,
    ) -> Result<Response<SearchBatchResponse>, Status> {
        Err(unimplemented("search_batch"))
    }

    async fn search_groups(
        &self,
        _: Request<SearchPointGroups>,
    ) -> Result<Response<SearchGroupsResponse>, Status> {
        Err(unimplemented("search_groups"))
    }

    async fn scroll(&self, _: Request<ScrollPoints>) -> Result<Response<ScrollResponse>, Status> {
        Err(unimplemented("scroll"))
    }

    async fn recommend(
        &self,
        _: Request<RecommendPoints>,
    ) -> Result<Response<RecommendResponse>, Status> {
        Err(unimplemented("recommend"))
    }

    async fn recommend_batch(
        &self,
        _: Request<RecommendBatchPoints>,
    ) -> Result<Response<RecommendBatchResponse>, Status> {
        Err(unimplemented("recommend_batch"))
    }

    async fn recommend_groups(
        &self,
        _: Request<RecommendPointGroups>,
    ) -> Result<Response<RecommendGroupsResponse>, Status> {
        Err(unimplemented("recommend_groups"))
    }

    async fn discover(
        &self,
        _: Request<DiscoverPoints>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        Err(unimplemented("discover"))
    }

    async fn discover_batch(
        &self,
        _: Request<DiscoverBatchPoints>,
    ) -> Result<Response<DiscoverBatchResponse>, Status> {
        Err(unimplemented("discover_batch"))
    }

    async fn update_batch(
        &self,
        _: Request<UpdateBatchPoints>,
    ) -> Result<Response<UpdateBatchResponse>, Status> {
        Err(unimplemented("update_batch"))
    }

    async fn query(&self, _: Request<QueryPoints>) -> Result<Response<QueryResponse>, Status> {
        Err(unimplemented("query"))
    }

    async fn query_batch(
        &self,
        _: Request<QueryBatchPoints>,
    ) -> Result<Response<QueryBatchResponse>, Status> {
        Err(unimplemented("query_batch"))
    }

    async fn query_groups(
        &self,
        _: Request<QueryPointGroups>,
    ) -> Result<Response<QueryGroupsResponse>, Status> {
        Err(unimplemented("query_groups"))
    }

    async fn facet(&self, _: Request<FacetCounts>) -> Result<Response<FacetResponse>, Status> {
        Err(unimplemented("facet"))
    }

    async fn search_matrix_pairs(
        &self,
        _: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixPairsResponse>, Status> {
        Err(unimplemented("search_matrix_pairs"))
    }

    async fn search_matrix_offsets(
        &self,
        _: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixOffsetsResponse>, Status> {
        Err(unimplemented("search_matrix_offsets"))
    }
}
